"""The node `pyk8s server` runs for itself unless --disable-agent: the kubelet with its HTTPS API and the
service proxy, in a child process; on the loopback socket the kubelet is `system:node:<name>` and the
proxy `system:kube-proxy`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from pyk8s.kubelet.kubelet import build_kubelet
from pyk8s.kubelet.server import serve_kubelet
from pyk8s.proxy import ServiceProxy
from pyk8s.server.components import loopback_client

log = logging.getLogger(__name__)


async def run_node(socket: Path, node_name: str, data_dir: str, ca_pem: bytes, cluster_cidr: str,
                   node_ip: str | None = None, proxy_mode: str = "nftables",
                   kubelet_port: int = 10250) -> None:
    """Run the kubelet and the service proxy until cancelled."""
    client = loopback_client(socket, f"system:node:{node_name}", ("system:nodes",))
    proxy_client = loopback_client(socket, "system:kube-proxy", ("system:node-proxier",))
    proxy = ServiceProxy(proxy_client, node_name=node_name, node_ips=[node_ip] if node_ip else [],
                         mode="userspace" if proxy_mode == "userspace" else "nftables",
                         cluster_cidr=cluster_cidr)
    proxy_task = asyncio.create_task(proxy.run(), name="service proxy")
    kubelet = build_kubelet(client, node_name, data_dir, node_ip=node_ip, cluster_cidr=cluster_cidr)
    api = None
    try:
        api = await serve_kubelet(kubelet, ca_pem=ca_pem, client=client, port=kubelet_port)
    except OSError as e:  # pods still run; logs, exec and port-forward are unavailable
        log.warning("kubelet API on port %s: %s", kubelet_port, e)
    try:
        await kubelet.run()
    finally:
        proxy_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await proxy_task
        if api is not None:
            await api.stop()
        await client.close()
        await proxy_client.close()
