"""The scheduling queue (Kubernetes' internal/queue): activeQ ordered by priority then arrival, a backoffQ
(1 s doubling to 10 s per attempt), and unschedulable pods parked until a cluster event that could help
them (or 5 minutes) moves them back."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_MAX_STAY = 300.0
FLUSH_UNSCHEDULABLE_EVERY = 30.0

# Cluster events and the plugins whose failures they may resolve (EventsToRegister, simplified).
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
NAMESPACE_CHANGE = "NamespaceChange"
EVENT_PLUGINS: dict[str, frozenset[str] | None] = {  # None: every plugin
    NODE_ADD: None,
    NODE_UPDATE: None,
    ASSIGNED_POD_ADD: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    ASSIGNED_POD_UPDATE: frozenset({"InterPodAffinity", "PodTopologySpread", "NodeResourcesFit"}),
    ASSIGNED_POD_DELETE: frozenset(
        {"NodeResourcesFit", "NodePorts", "InterPodAffinity", "PodTopologySpread", "DefaultPreemption"}
    ),
    NAMESPACE_CHANGE: frozenset({"InterPodAffinity"}),
}


@dataclass(slots=True)
class QueuedPod:
    pod: Obj
    key: str
    timestamp: float  # when it last entered the queue
    attempts: int = 0
    initial_attempt: float = 0.0
    unschedulable_plugins: frozenset[str] = frozenset()
    backoff_expires: float = 0.0

    @property
    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)


@dataclass(order=True, slots=True)
class _Entry:
    sort: tuple[Any, ...]
    seq: int
    key: str = field(compare=False)


class SchedulingQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._active: list[_Entry] = []
        self._backoff: list[_Entry] = []
        self._pods: dict[str, QueuedPod] = {}  # everything queued, by key
        self._where: dict[str, str] = {}  # key → "active" | "backoff" | "unschedulable"
        self._parked: dict[str, QueuedPod] = {}  # the unschedulable ones
        self._in_flight: set[str] = set()
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        # A move request during a pod's cycle sends the pod to backoff, not to unschedulable: the event
        # it would have waited for may just have happened (schedulingCycle / moveRequestCycle).
        self._cycle = 0
        self._move_cycle = -1
        self._pop_cycle: dict[str, int] = {}
        self._closed = False
        self._attempted: dict[str, QueuedPod] = {}  # popped, not yet done: keeps attempts across tries
        self._last_flush = clock()

    def __len__(self) -> int:
        return len(self._pods)

    @property
    def has_parked(self) -> bool:
        return bool(self._parked)

    def where(self, key: str) -> str | None:
        return self._where.get(key)

    # --- adding ---------------------------------------------------------------------------------

    def _push_active(self, qp: QueuedPod) -> None:
        heapq.heappush(self._active, _Entry((-qp.priority, qp.timestamp), next(self._seq), qp.key))
        self._parked.pop(qp.key, None)
        self._where[qp.key] = "active"
        self._wakeup.set()

    def _push_backoff(self, qp: QueuedPod) -> None:
        heapq.heappush(self._backoff, _Entry((qp.backoff_expires,), next(self._seq), qp.key))
        self._parked.pop(qp.key, None)
        self._where[qp.key] = "backoff"
        self._wakeup.set()

    def add(self, pod: Obj) -> None:
        key = _key(pod)
        if key in self._in_flight:
            return
        qp = self._pods.get(key)
        if qp is not None:
            qp.pod = pod
            return
        now = self.clock()
        qp = QueuedPod(pod, key, now, initial_attempt=now)
        self._pods[key] = qp
        self._push_active(qp)

    def update(self, pod: Obj, spec_changed: bool = True) -> None:
        key = _key(pod)
        qp = self._pods.get(key)
        if qp is None:
            if key not in self._in_flight:
                self.add(pod)
            return
        qp.pod = pod
        if spec_changed and self._where.get(key) == "unschedulable":
            self._move(qp)

    def delete(self, key: str) -> None:
        self._pods.pop(key, None)  # heap entries of forgotten keys are skipped when popped
        self._where.pop(key, None)
        self._parked.pop(key, None)
        self._in_flight.discard(key)

    def backoff_duration(self, attempts: int) -> float:
        return float(min(INITIAL_BACKOFF * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF))

    def add_unschedulable(self, pod: Obj, plugins: Iterable[str] = (), *, error: bool = False) -> None:
        """After a failed attempt: to backoff when an event came meanwhile (or on errors), else parked."""
        key = _key(pod)
        popped_in = self._pop_cycle.pop(key, self._cycle)
        self._in_flight.discard(key)
        if key in self._pods or self._closed:
            return
        qp = self._attempted.pop(key, None) or QueuedPod(pod, key, self.clock())
        qp.pod = pod
        qp.timestamp = self.clock()
        qp.unschedulable_plugins = frozenset(plugins)
        qp.backoff_expires = qp.timestamp + self.backoff_duration(qp.attempts)
        self._pods[key] = qp
        if error or self._move_cycle >= popped_in:
            self._push_backoff(qp)
        else:
            self._where[key] = "unschedulable"
            self._parked[key] = qp

    def done(self, key: str) -> None:
        """The pod was scheduled (or dropped): it leaves the queue's books."""
        self._in_flight.discard(key)
        self._pop_cycle.pop(key, None)
        self._attempted.pop(key, None)

    # --- moving ---------------------------------------------------------------------------------

    def _move(self, qp: QueuedPod) -> None:
        if qp.backoff_expires > self.clock():
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    def move_all(self, event: str, only: Callable[[QueuedPod], bool] | None = None) -> int:
        """A cluster event: parked pods it may help go back to active (or backoff while theirs runs)."""
        plugins = EVENT_PLUGINS.get(event)
        moved = 0
        for qp in list(self._parked.values()):
            if plugins is not None and qp.unschedulable_plugins and not (qp.unschedulable_plugins & plugins):
                continue
            if only is not None and not only(qp):
                continue
            self._move(qp)
            moved += 1
        self._move_cycle = self._cycle
        return moved

    def flush_unschedulable(self) -> None:
        """Pods parked longer than 5 minutes try again anyway."""
        now = self.clock()
        for qp in list(self._parked.values()):
            if now - qp.timestamp > UNSCHEDULABLE_MAX_STAY:
                self._move(qp)

    def flush_backoff(self) -> float | None:
        """Backoffs that ran out go to active; the seconds until the next one does (None: none waits)."""
        now = self.clock()
        while self._backoff:
            e = self._backoff[0]
            qp = self._pods.get(e.key)
            if qp is None or self._where.get(e.key) != "backoff" or e.sort[0] != qp.backoff_expires:
                heapq.heappop(self._backoff)
                continue
            if qp.backoff_expires > now:
                return qp.backoff_expires - now
            heapq.heappop(self._backoff)
            self._push_active(qp)
        return None

    # --- popping --------------------------------------------------------------------------------

    async def pop(self) -> QueuedPod:
        """The next pod to schedule; waits for one."""
        while True:
            if self.clock() - self._last_flush >= FLUSH_UNSCHEDULABLE_EVERY:
                self._last_flush = self.clock()
                self.flush_unschedulable()
            delay = self.flush_backoff()
            while self._active:
                e = heapq.heappop(self._active)
                qp = self._pods.get(e.key)
                if qp is None or self._where.get(e.key) != "active":
                    continue
                del self._pods[e.key]
                del self._where[e.key]
                qp.attempts += 1
                self._cycle += 1
                self._in_flight.add(e.key)
                self._pop_cycle[e.key] = self._cycle
                self._attempted[e.key] = qp
                return qp
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay if delay is not None else FLUSH_UNSCHEDULABLE_EVERY):
                    await self._wakeup.wait()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def pending(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0}
        for w in self._where.values():
            out[w] += 1
        return out


def _key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
