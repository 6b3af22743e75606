"""A PodManager over the fake runtime against a real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.pods import PodManager, PodsConfig
from tests.kubelet.fakeruntime import FakeImages, FakeRuntime
from tests.support.apiserver import Server, api_server
from tests.support.poll import until

PODS = catalog.lookup("", "v1", "pods")
EVENTS = catalog.lookup("", "v1", "events")
assert PODS and EVENTS

NODE = "node-a"


@dataclass
class Env:
    server: Server
    client: Client
    runtime: FakeRuntime
    images: FakeImages
    manager: PodManager
    recorder: EventRecorder

    async def create(self, pod: dict[str, Any]) -> dict[str, Any]:
        return await self.client.create(PODS, pod)

    async def get(self, name: str) -> dict[str, Any]:
        return await self.client.get(PODS, name, "default")

    async def wait(self, name: str, check: Any, within: float = 20.0,
                   what: str = "pod state") -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            pod = await self.get(name)
            return pod if check(pod) else None
        result: dict[str, Any] = await until(probe, within, what)
        return result

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        await self.recorder.flush()
        items = (await self.client.list(EVENTS, "default"))["items"]
        return [(e["type"], e["reason"], e["message"]) for e in items
                if e["involvedObject"]["name"] == name]


def pod(name: str, *containers: dict[str, Any], restart: str = "Always", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": list(containers), **spec}}


def container(name: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent",
            "command": list(args) or ["run"], **extra}


def state(pod: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for cs in (pod.get("status") or {}).get(key) or []:
        if cs["name"] == name:
            return dict(cs)
    return {}


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}


@contextlib.asynccontextmanager
async def running(srv: Server, client: Client, cfg: PodsConfig, runtime: Any, images: Any,
                  recorder: EventRecorder, volumes: Any = None, within: float = 20.0) -> AsyncIterator[Env]:
    """A PodManager over `runtime`, running until the block leaves; entered once it has synced."""
    manager = PodManager(client, cfg, runtime=runtime, images=images, volumes=volumes, recorder=recorder)
    task = asyncio.create_task(manager.run())
    try:
        async with asyncio.timeout(within):
            await manager.synced.wait()
        yield Env(srv, client, runtime, images, manager, recorder)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def kubelet(runtime: FakeRuntime | None = None, server: Server | None = None,
                  **config: Any) -> AsyncIterator[Env]:
    async with contextlib.AsyncExitStack() as stack:
        srv = server or await stack.enter_async_context(api_server())
        client = Client(HTTPTransport(srv.url))
        stack.push_async_callback(client.close)
        recorder = EventRecorder(client, "kubelet", NODE)
        stack.push_async_callback(recorder.close)
        rt = runtime or FakeRuntime()
        images = FakeImages()
        cfg = PodsConfig(node_name=NODE, node_ip="192.0.2.10", log_root="/nonexistent/logs",
                         relist_period=0.02, backoff_base=0.3, backoff_cap=1.2, error_resync=0.1,
                         probe_time_scale=0.05, **config)
        async with running(srv, client, cfg, rt, images, recorder) as env:
            yield env
