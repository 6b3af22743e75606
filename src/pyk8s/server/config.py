"""The settings of `pyk8s server`, from its command line."""

from __future__ import annotations

import argparse
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    bind_address: str = "0.0.0.0"
    advertise_address: str = ""
    tls_san: tuple[str, ...] = ()
    https_port: int = 6443
    datastore_endpoint: str = ""
    disable_agent: bool = False
    disable_dns: bool = False
    node_name: str = ""
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    audit_log: str = ""
    proxy_mode: str = "nftables"
    node_monitor_grace_period: float = 40.0
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerConfig:
        for flag, value in (("--cluster-cidr", args.cluster_cidr), ("--service-cidr", args.service_cidr)):
            try:
                ipaddress.ip_network(value)
            except ValueError as e:
                raise SystemExit(f"pyk8s server: {flag}: {e}") from None
        if args.advertise_address:
            try:
                if ipaddress.ip_address(args.advertise_address).is_unspecified:
                    raise ValueError("must be an address others can reach, not the unspecified one")
            except ValueError as e:
                raise SystemExit(f"pyk8s server: --advertise-address: {e}") from None
        return cls(
            data_dir=Path(args.data_dir).resolve(),
            bind_address=args.bind_address,
            advertise_address=args.advertise_address,
            tls_san=tuple(args.tls_san),
            https_port=args.https_port,
            datastore_endpoint=args.datastore_endpoint,
            disable_agent=args.disable_agent,
            disable_dns=args.disable_dns,
            node_name=args.node_name,
            cluster_cidr=args.cluster_cidr,
            service_cidr=args.service_cidr,
            audit_log=args.audit_log,
            proxy_mode=args.proxy_mode,
            node_monitor_grace_period=args.node_monitor_grace_period,
            default_not_ready_toleration_seconds=args.default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=args.default_unreachable_toleration_seconds,
        )

    def advertised(self, node_ip: str) -> str:
        """The API server's address for pods and agents: --advertise-address, else the bind address, else
        (bound to every interface) the node's IP, as kube-apiserver and k3s choose it."""
        if self.advertise_address:
            return self.advertise_address
        if not self.bind_address:
            return node_ip
        try:
            unspecified = ipaddress.ip_address(self.bind_address).is_unspecified
        except ValueError:  # a host name: its address is where the server is reached
            return socket.gethostbyname(self.bind_address)
        return node_ip if unspecified else self.bind_address

    @property
    def socket(self) -> Path:
        """The loopback socket the server's own components use."""
        return self.data_dir / "api.sock"

    @property
    def store_endpoint(self) -> str:
        return self.datastore_endpoint or f"sqlite://{self.data_dir / 'db' / 'state.db'}"
