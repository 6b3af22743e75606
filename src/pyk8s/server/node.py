"""The node `pyk8s server` runs for itself unless --disable-agent: the kubelet and its HTTPS API in a
child process, authenticated on the loopback socket as `system:node:<name>`."""

from __future__ import annotations

import logging
from pathlib import Path

from pyk8s.kubelet.kubelet import build_kubelet
from pyk8s.kubelet.server import serve_kubelet
from pyk8s.server.components import loopback_client

log = logging.getLogger(__name__)


async def run_node(socket: Path, node_name: str, data_dir: str, ca_pem: bytes, cluster_cidr: str,
                   node_ip: str | None = None, kubelet_port: int = 10250) -> None:
    """Run the kubelet until cancelled."""
    client = loopback_client(socket, f"system:node:{node_name}", ("system:nodes",))
    kubelet = build_kubelet(client, node_name, data_dir, node_ip=node_ip, cluster_cidr=cluster_cidr)
    api = None
    try:
        api = await serve_kubelet(kubelet, ca_pem=ca_pem, client=client, port=kubelet_port)
    except OSError as e:  # pods still run; logs, exec and port-forward are unavailable
        log.warning("kubelet API on port %s: %s", kubelet_port, e)
    try:
        await kubelet.run()
    finally:
        if api is not None:
            await api.stop()
        await client.close()
