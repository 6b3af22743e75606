"""The kubelet: the node agent (Node, Lease, RuntimeClasses) and the pod manager over one runtime, image
store, network and volume manager. `build_kubelet` assembles the real parts; tests hand in their own."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.kubelet import cri
from pyk8s.kubelet.node import LEASE_DURATION, NodeAgent
from pyk8s.kubelet.pods import PodManager, PodsConfig, VolumeManagerLike
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["Kubelet", "build_kubelet"]

log = logging.getLogger(__name__)


class NetworkLike(Protocol):
    def set_pod_cidr(self, cidr: str) -> None: ...


class Kubelet:
    """`await run()` until cancelled: registers the Node, then runs pods, status and lease together."""

    def __init__(self, client: Client, node_name: str, data_dir: str, *, runtime: cri.RuntimeService,
                 images: cri.ImageService, network: NetworkLike | None = None,
                 volumes: VolumeManagerLike | None = None, node_ip: str | None = None,
                 kubelet_port: int = 10250, status_interval: float = 10.0,
                 lease_duration: int = LEASE_DURATION, relist_period: float = 1.0,
                 backoff_base: float = 10.0, backoff_cap: float = 300.0, volume_refresh: float = 10.0,
                 startup: list[Callable[[], Awaitable[Any]]] | None = None, **pod_options: Any) -> None:
        """`pod_options` go to PodsConfig: cluster_dns, cluster_domain, cgroup_root, offline_fallback …"""
        self.client = client
        self.node_name = node_name
        self.data_dir = data_dir
        self.runtime = runtime
        self.images = images
        self.network = network
        self.volumes = volumes
        self.volume_refresh = volume_refresh
        self.startup = startup or []
        self.node = NodeAgent(client, node_name, data_dir, runtime_version=runtime.version(),
                              handlers=runtime.handlers(), node_ip=node_ip, kubelet_port=kubelet_port,
                              status_interval=status_interval, lease_duration=lease_duration,
                              on_pod_cidr=network.set_pod_cidr if network is not None else None)
        self.recorder = EventRecorder(client, "kubelet", node_name)
        self.pods = PodManager(client, PodsConfig(
            node_name=node_name, node_ip=self.node.node_ip, log_root=os.path.join(data_dir, "agent", "logs"),
            relist_period=relist_period, backoff_base=backoff_base, backoff_cap=backoff_cap,
            allocatable=self.node.allocatable_resources, **pod_options), runtime=runtime, images=images,
            volumes=volumes, recorder=self.recorder)

    async def run(self) -> None:
        for step in self.startup:
            await step()
        await self.node.register()
        # What the process holds now (modules, classes, the seed image's records) lives as long as it does:
        # kept out of the collector, a full collection during a burst scans only what pods brought (it took
        # tens of ms of CPU for the imports alone, on the path of whichever pod allocated).
        gc.collect()
        gc.freeze()
        tasks = [asyncio.create_task(self.node.run(), name="kubelet node"),
                 asyncio.create_task(self.pods.run(), name="kubelet pods")]
        refresh = getattr(self.volumes, "refresh", None)
        if refresh is not None:
            tasks.append(asyncio.create_task(self._refresh_volumes(refresh), name="kubelet volumes"))
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait(tasks)
            await self.recorder.close()

    async def _refresh_volumes(self, refresh: Callable[[], Awaitable[Any]]) -> None:
        """configMap and secret volumes of running pods follow their objects, as the kubelet's resync."""
        while True:
            await asyncio.sleep(self.volume_refresh)
            try:
                await refresh()
            except Exception as e:
                log.warning("kubelet: refreshing volumes failed: %s", e)


def build_kubelet(client: Client, node_name: str, data_dir: str, *, node_ip: str | None = None,
                  kubelet_port: int = 10250, cluster_cidr: str = "", bridge: str = "pyk8s0",
                  cni_bin_dir: str = "/usr/lib/cni", **options: Any) -> Kubelet:
    """The real parts: runc/runsc runtime, the node's image store (with the seed image), CNI networking and
    the volume manager, all under `<data_dir>/agent`."""
    from pyk8s.kubelet.images import ImageStore, ensure_seed_image
    from pyk8s.kubelet.network import PodNetwork
    from pyk8s.kubelet.runtime import RuncRuntime
    from pyk8s.kubelet.volumes import VolumeManager

    agent = os.path.join(data_dir, "agent")
    images = ImageStore.for_data_dir(data_dir)
    network = PodNetwork(os.path.join(agent, "network"), cni_bin_dir, bridge, cluster_cidr=cluster_cidr)
    runtime = RuncRuntime(os.path.join(agent, "runtime"), images, network)
    volumes = VolumeManager(client, os.path.join(agent, "volumes"))

    async def seed() -> None:
        await ensure_seed_image(images)

    return Kubelet(client, node_name, data_dir, runtime=runtime, images=images, network=network,
                   volumes=volumes, node_ip=node_ip, kubelet_port=kubelet_port, startup=[seed], **options)
