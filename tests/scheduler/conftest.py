"""A real API server on loopback, a client, and a running Scheduler; helpers to make nodes and pods."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from pyk8s.scheduler.scheduler import Scheduler
from tests.support.apiserver import Server, api_server, info

NODES = info("", "nodes")
PODS = info("", "pods")
EVENTS = info("", "events")


def node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: int = 110,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"capacity": alloc, "allocatable": alloc},
    }
    return obj


def pod(
    name: str,
    cpu: str | None = None,
    memory: str | None = None,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if requests:
        container["resources"] = {"requests": requests}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"containers": [container], **spec},
    }


async def eventually_async(
    check: Callable[[], Awaitable[object]], within: float = 5.0, what: str = "condition"
) -> None:
    """Poll an async `check` until it returns a true value; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - polling with a deadline is the rule
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with api_server() as srv:
        yield srv


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    c = Client(HTTPTransport(server.url))
    yield c
    await c.close()


@contextlib.asynccontextmanager
async def running_scheduler(client: Client, factory: SharedInformerFactory | None = None,
                            **options: Any) -> AsyncIterator[Scheduler]:
    """A Scheduler running over `factory` (a new one by default), stopped with it on the way out."""
    factory = factory or SharedInformerFactory(client)
    recorder = EventRecorder(client, "default-scheduler")
    s = Scheduler(client, factory, recorder, **options)
    task = asyncio.create_task(s.run())
    try:
        yield s
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await recorder.close()
        await factory.stop()


@pytest.fixture
async def scheduler(client: Client) -> AsyncIterator[Scheduler]:
    async with running_scheduler(client) as s:
        async with asyncio.timeout(5):
            await s.informers.wait_for_sync()
        yield s
