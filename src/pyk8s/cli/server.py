"""`pyk8s server`: the control plane and, unless --disable-agent, its own node."""

from __future__ import annotations

import argparse
from typing import Any

from pyk8s.cli.images import DEFAULT_DATA_DIR


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("server", help="run the control plane")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where state, keys and kubeconfig live")
    p.add_argument("--bind-address", default="0.0.0.0",
                   help="where the API server listens (default: every interface, as Kubernetes and k3s)")
    p.add_argument("--advertise-address", default="",
                   help="the address the `kubernetes` Service and the cluster DNS point at, which pods and "
                        "agents reach (default: the bind address, or the node's IP when bound to all)")
    p.add_argument("--tls-san", action="append", default=[], metavar="NAME",
                   help="another host name or IP for the serving certificate (repeatable)")
    p.add_argument("--https-port", type=int, default=6443)
    p.add_argument("--datastore-endpoint", default="",
                   help="sqlite:///PATH (default: DATA_DIR/db/state.db) or etcd://HOST:PORT[,HOST:PORT…]")
    p.add_argument("--disable-agent", action="store_true", help="run no node on this machine")
    p.add_argument("--disable-dns", action="store_true",
                   help="serve no cluster DNS (kube-system/kube-dns on the node's address, port 53)")
    p.add_argument("--node-name", default="")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--service-cidr", default="10.43.0.0/16")
    p.add_argument("--audit-log", default="", help="write one JSON line per request to this file")
    p.add_argument("--proxy-mode", choices=("nftables", "userspace"), default="nftables",
                   help="how the node's service proxy forwards: nftables rules or userspace round robin")
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0, metavar="SECONDS",
                   help="a node silent this long becomes NotReady/Unknown and is tainted")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300, metavar="SECONDS",
                   help="tolerationSeconds pods get for the not-ready NoExecute taint")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300, metavar="SECONDS",
                   help="tolerationSeconds pods get for the unreachable NoExecute taint")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyk8s.server.main import run_server

    return run_server(args)
