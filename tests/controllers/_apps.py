"""Helpers for the workload controller tests: controllers with two workers each, pod listing and a
stand-in kubelet that marks pods Running and Ready."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.controllers.manager import ControllerContext, ControllerOptions, Runnable
from pyk8s.controllers.replicaset import PODS
from tests.controllers._housekeeping import running
from tests.support.apiserver import Server

Obj = dict[str, Any]


def controllers(server: Server, *factories: Callable[[ControllerContext], Runnable]
                ) -> contextlib.AbstractAsyncContextManager[tuple[Client, list[Any]]]:
    """The controllers with two workers each, started as `running` does."""
    return running(server, *factories, options=ControllerOptions(workers=2))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def pods(client: Client, selector: str | None = None, namespace: str = "default",
               active: bool = True) -> list[Obj]:
    items: list[Obj] = (await client.list(PODS, namespace, label_selector=selector)).get("items") or []
    if active:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return sorted(items, key=lambda p: p["metadata"]["name"])


async def make_ready(client: Client, pod: Obj, node: str = "node-1", ready: bool = True,
                     since: str | None = None) -> None:
    """What a kubelet would write: the pod Running (and Ready) on a node."""
    m = pod["metadata"]
    status = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": since or now()}]}
    try:
        if not pod["spec"].get("nodeName"):
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": m["name"]},
                       "target": {"kind": "Node", "name": node}}
            await client.create_subresource(PODS, m["name"], "binding", binding, m["namespace"])
        await client.patch(PODS, m["name"], {"status": status}, "merge", m["namespace"], subresource="status")
    except StatusError as e:
        if e.code not in (404, 409):  # gone, or bound meanwhile
            raise


class FakeKubelet:
    """Marks every pod matching a selector Running and Ready as it appears (the hollow node's job), and
    deletes pods being deleted (as a kubelet confirms a graceful delete)."""

    def __init__(self, client: Client, selector: str | None = None, namespace: str = "default") -> None:
        self.client = client
        self.selector = selector
        self.namespace = namespace
        self.enabled = True
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FakeKubelet:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _loop(self) -> None:
        while True:
            if self.enabled:
                for p in await pods(self.client, self.selector, self.namespace, active=False):
                    m = p["metadata"]
                    if m.get("deletionTimestamp"):
                        with contextlib.suppress(StatusError):
                            await self.client.delete(PODS, m["name"], m["namespace"], grace_period_seconds=0)
                    elif (p.get("status") or {}).get("phase") != "Running":
                        await make_ready(self.client, p)
            await asyncio.sleep(0.02)
