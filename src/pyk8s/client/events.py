"""Recording core/v1 Events, as client-go's EventRecorder: never blocks the caller, folds repeats.

`kubectl describe` shows these (Scheduled, FailedScheduling, SuccessfulCreate, ScalingReplicaSet …).
A repeat of the same (object, type, reason, message) within the fold window bumps `count` and
`lastTimestamp` of the existing Event instead of creating another.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.client import Client, Obj
from pyk8s.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_EVENTS = catalog.by_kind("", "Event")
assert _EVENTS is not None
EVENTS = _EVENTS

NORMAL = "Normal"
WARNING = "Warning"


@dataclass
class _Folded:
    name: str
    namespace: str
    count: int
    at: float


class EventRecorder:
    """`record(obj, type, reason, message)` queues an Event; a background task writes them."""

    def __init__(self, client: Client, component: str, host: str = "", *, queue_size: int = 1000,
                 fold_window: float = 600.0) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.fold_window = fold_window
        self._queue: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(queue_size)
        self._folded: dict[tuple[str, str, str, str], _Folded] = {}
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"events:{self.component}")
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:  # events are best effort; the work they describe is not
            self.dropped += 1

    async def flush(self) -> None:
        """Wait until every queued event has been written (for tests and shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(*item)
            except StatusError as e:
                log.debug("event not recorded: %s", e.message)
            except Exception:
                log.exception("event not recorded")
            finally:
                self._queue.task_done()

    def _involved(self, obj: Obj) -> Obj:
        meta = obj.get("metadata", {})
        ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
               "name": meta.get("name", ""), "uid": meta.get("uid", "")}
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        if meta.get("resourceVersion"):
            ref["resourceVersion"] = meta["resourceVersion"]
        return ref

    async def _write(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        involved = self._involved(obj)
        namespace = involved.get("namespace") or "default"
        key = (involved["uid"] or involved["name"], type_, reason, message)
        now = now_rfc3339()
        folded = self._folded.get(key)
        if folded is not None and time.monotonic() - folded.at < self.fold_window:
            folded.count += 1
            folded.at = time.monotonic()
            patch: dict[str, Any] = {"count": folded.count, "lastTimestamp": now}
            try:
                await self.client.patch(EVENTS, folded.name, patch, "merge", folded.namespace, decode=False)
                return
            except StatusError as e:
                if e.code != 404:
                    raise
        name = f"{involved['name']}.{int(time.time() * 1e9):x}{secrets.token_hex(2)}"
        source: dict[str, str] = {"component": self.component}
        if self.host:
            source["host"] = self.host
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved, "reason": reason, "message": message, "type": type_,
            "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        await self.client.create(EVENTS, event, namespace, decode=False)
        if len(self._folded) > 4096:
            self._folded.clear()
        self._folded[key] = _Folded(name, namespace, 1, time.monotonic())
