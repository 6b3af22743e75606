"""Where pods and agents find the API server: like kube-apiserver and k3s, `pyk8s server` binds every
interface by default and advertises the node's IP, so the `kubernetes` Service points at an address a pod
can reach (never loopback, which in a pod is the pod's own), and the serving certificate names it."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from pyk8s.cli import server as server_cli
from pyk8s.kubelet.node import default_node_ip
from pyk8s.server.config import ServerConfig
from tests.support.cluster import Cluster, start_cluster


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    server_cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["server", *argv])


def test_the_defaults_bind_everywhere_and_advertise_the_node_ip(tmp_path: Path) -> None:
    config = ServerConfig.from_args(_args("--data-dir", str(tmp_path)))
    assert config.bind_address == "0.0.0.0"
    assert config.advertised("192.0.2.7") == "192.0.2.7"


def test_an_advertise_address_or_a_specific_bind_address_wins(tmp_path: Path) -> None:
    config = ServerConfig.from_args(_args("--data-dir", str(tmp_path), "--advertise-address", "198.51.100.4",
                                          "--tls-san", "api.example.test", "--tls-san", "203.0.113.9"))
    assert config.advertised("192.0.2.7") == "198.51.100.4"
    assert config.tls_san == ("api.example.test", "203.0.113.9")
    bound = ServerConfig.from_args(_args("--data-dir", str(tmp_path), "--bind-address", "198.51.100.5"))
    assert bound.advertised("192.0.2.7") == "198.51.100.5"


def test_an_unspecified_advertise_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--advertise-address"):
        ServerConfig.from_args(_args("--data-dir", str(tmp_path), "--advertise-address", "0.0.0.0"))


@pytest.fixture(scope="module")
def default_cluster() -> Iterator[Cluster]:
    c = start_cluster(["--tls-san", "api.example.test"])
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(c.data_dir, ignore_errors=True)


def test_the_kubernetes_service_points_at_the_node_ip(default_cluster: Cluster) -> None:
    node_ip = default_node_ip()
    if node_ip == "127.0.0.1":
        pytest.skip("this machine has no default route, so no address but loopback")
    endpoints = json.loads(default_cluster.kubectl("get", "endpoints", "kubernetes", "-o", "json").stdout)
    assert endpoints["subsets"] == [{"addresses": [{"ip": node_ip}],
                                     "ports": [{"name": "https", "port": default_cluster.port,
                                                "protocol": "TCP"}]}]
    slice_ = json.loads(default_cluster.kubectl("get", "endpointslice", "kubernetes", "-o", "json").stdout)
    assert slice_["endpoints"][0]["addresses"] == [node_ip]
    # The kubeconfig keeps talking to loopback; the certificate names both, and the extra SAN.
    cert = x509.load_pem_x509_certificate((default_cluster.data_dir / "pki" / "serving.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert {node_ip, "127.0.0.1", "10.43.0.1"} <= ips
    assert "api.example.test" in sans.get_values_for_type(x509.DNSName)
    assert f"https://127.0.0.1:{default_cluster.port}" in default_cluster.kubeconfig.read_text()


def test_the_server_listens_on_every_interface(default_cluster: Cluster) -> None:
    """Checked on the listening socket itself (no traffic leaves loopback)."""
    port = default_cluster.port
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # state LISTEN
    assert f"00000000:{port:04X}" in local
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_a_new_advertise_address_moves_the_kubernetes_and_dns_endpoints(tmp_path: Path) -> None:
    """After a restart with another address (a node whose IP changed), the `kubernetes` Service and the
    cluster DNS point at the new one. The addresses are TEST-NET-2 ones nobody answers on: the DNS server
    cannot listen there, which the server reports and survives."""
    def addresses(c: Cluster) -> tuple[list[str], list[str], list[str]]:
        api = json.loads(c.kubectl("get", "endpoints", "kubernetes", "-o", "json").stdout)
        dns = json.loads(c.kubectl("get", "-n", "kube-system", "endpoints", "kube-dns", "-o", "json").stdout)
        dns_slice = json.loads(c.kubectl("get", "-n", "kube-system", "endpointslice", "kube-dns",
                                         "-o", "json").stdout)
        return ([a["ip"] for a in api["subsets"][0]["addresses"]],
                [a["ip"] for a in dns["subsets"][0]["addresses"]], dns_slice["endpoints"][0]["addresses"])

    data_dir = tmp_path / "server"
    for address in ("198.51.100.4", "198.51.100.5"):
        c = start_cluster(["--advertise-address", address], data_dir=data_dir, dns=True)
        try:
            assert addresses(c) == ([address], [address], [address])
        finally:
            assert c.stop() == 0
