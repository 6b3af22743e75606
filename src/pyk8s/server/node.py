"""The node `pyk8s server` runs for itself unless --disable-agent: the kubelet with its HTTPS API, the
service proxy and the routes to the other nodes' pod CIDRs, in a child process; on the loopback socket the
kubelet is `system:node:<name>` and the proxy `system:kube-proxy`. `serve_node` runs a built node;
`pyk8s agent` uses it too, with certificates for both identities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from pyk8s.client.client import Client
from pyk8s.kubelet.kubelet import Kubelet, build_kubelet
from pyk8s.kubelet.routes import NodeRoutes
from pyk8s.kubelet.server import serve_kubelet
from pyk8s.proxy import ServiceProxy
from pyk8s.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)


async def serve_node(kubelet: Kubelet, client: Client, ca_pem: bytes, *, kubelet_port: int = 10250,
                     proxy: ServiceProxy | None = None, routes: bool = True) -> None:
    """Run `kubelet`, its HTTPS API on `kubelet_port`, `proxy` and (with `routes`) the host-gw routes to
    the other nodes' pod CIDRs until cancelled or the kubelet fails. On the way out the runtime's
    monitor server is told to leave (containers keep running, and so do the routes they need)."""
    helpers = []
    if proxy is not None:
        helpers.append(asyncio.create_task(proxy.run(), name="service proxy"))
    if routes:
        node_routes = NodeRoutes(client, kubelet.node_name)
        helpers.append(asyncio.create_task(node_routes.run(), name="node routes"))
    api = None
    try:
        try:
            api = await serve_kubelet(kubelet, ca_pem=ca_pem, client=client, port=kubelet_port)
        except OSError as e:  # pods still run; logs, exec and port-forward are unavailable
            log.warning("kubelet API on port %s: %s", kubelet_port, e)
        await kubelet.run()
    finally:
        await cancel_and_wait(helpers)
        if api is not None:
            await api.stop()
        close = getattr(kubelet.runtime, "close", None)  # not in the CRI interface: runc's monitor server
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def run_node(socket: Path, node_name: str, data_dir: str, ca_pem: bytes, cluster_cidr: str,
                   node_ip: str | None = None, proxy_mode: str = "nftables",
                   kubelet_port: int = 10250) -> None:
    """Run the kubelet and the service proxy until cancelled."""
    from pyk8s.server.components import loopback_client

    client = loopback_client(socket, f"system:node:{node_name}", ("system:nodes",))
    proxy_client = loopback_client(socket, "system:kube-proxy", ("system:node-proxier",))
    try:
        proxy = ServiceProxy(proxy_client, node_name=node_name,
                             mode="userspace" if proxy_mode == "userspace" else "nftables",
                             cluster_cidr=cluster_cidr)
        kubelet = build_kubelet(client, node_name, data_dir, node_ip=node_ip, cluster_cidr=cluster_cidr)
        await serve_node(kubelet, client, ca_pem, kubelet_port=kubelet_port, proxy=proxy)
    finally:
        await client.close()
        await proxy_client.close()
