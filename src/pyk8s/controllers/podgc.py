"""Pod garbage collection (Kubernetes 1.32's pod-garbage-collector, pkg/controller/podgc).

Every `period` seconds, as Kubernetes' gc():
- terminated pods (Succeeded or Failed) beyond `terminated_pod_gc_threshold` are deleted, oldest first;
- terminating pods on a NotReady node tainted `node.kubernetes.io/out-of-service` are force-deleted;
- pods bound to a node that no longer exists — absent for a whole quarantine and confirmed by a live read —
  are marked Failed with a DisruptionTarget condition (DeletionByPodGC) and force-deleted;
- terminating pods that were never scheduled are force-deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.cache import NODE_NAME_INDEX, node_name_index
from pyk8s.controllers.manager import ControllerContext

__all__ = ["OUT_OF_SERVICE_TAINT", "PodGCController"]

log = logging.getLogger(__name__)


PODS = require("", "Pod")
NODES = require("", "Node")
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
GC_CHECK_PERIOD = 20.0

Obj = dict[str, Any]


def _terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _node_ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


class PodGCController:
    name = "podgc"

    def __init__(self, ctx: ControllerContext, *, period: float = GC_CHECK_PERIOD) -> None:
        self.client = ctx.client
        self.threshold = ctx.options.terminated_pod_gc_threshold
        self.quarantine = ctx.options.pod_gc_quarantine
        self.period = period
        pods = ctx.informers.informer(PODS)
        pods.add_index(NODE_NAME_INDEX, node_name_index)
        self.pods = pods.lister
        self.nodes = ctx.informers.informer(NODES).lister
        # Node name → when podgc first saw pods bound to it while it did not exist (the quarantine).
        self._missing_since: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.gc()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("podgc: a pass failed")
            await asyncio.sleep(self.period)

    async def gc(self) -> None:
        pods = self.pods.list()
        if self.threshold > 0:
            await self._gc_terminated(pods)
        await self._gc_terminating(pods)
        await self._gc_orphaned(pods)
        await self._gc_unscheduled_terminating(pods)

    async def _gc_terminated(self, pods: list[Obj]) -> None:
        terminated = [p for p in pods if _terminated(p) and not p["metadata"].get("deletionTimestamp")]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        terminated.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
        log.info("podgc: %d terminated pods over the threshold of %d", excess, self.threshold)
        await asyncio.gather(*(self._delete(p) for p in terminated[:excess]))

    async def _gc_terminating(self, pods: list[Obj]) -> None:
        doomed = []
        for p in pods:
            node_name = (p.get("spec") or {}).get("nodeName")
            if not p["metadata"].get("deletionTimestamp") or not node_name:
                continue
            node = self.nodes.get(node_name)
            if node is None or _node_ready(node):
                continue
            taints = (node.get("spec") or {}).get("taints") or []
            if any(t.get("key") == OUT_OF_SERVICE_TAINT for t in taints):
                doomed.append(p)
        await asyncio.gather(*(self._delete(p, mark_failed=True) for p in doomed))

    async def _gc_orphaned(self, pods: list[Obj]) -> None:
        now = time.monotonic()
        bound_to = {str((p.get("spec") or {}).get("nodeName") or "") for p in pods} - {""}
        missing = {n for n in bound_to if self.nodes.get(n) is None}
        for name in list(self._missing_since):
            if name not in missing:
                del self._missing_since[name]
        for name in missing:
            self._missing_since.setdefault(name, now)
        for name in sorted(missing):
            if now - self._missing_since[name] < self.quarantine:
                continue
            try:
                await self.client.get(NODES, name)
                continue  # the node exists; our cache lags
            except StatusError as e:
                if e.code != 404:
                    raise
            orphans = self.pods.by_index(NODE_NAME_INDEX, name)
            log.info("podgc: deleting %d pods of missing node %s", len(orphans), name)
            await asyncio.gather(*(self._delete(p, mark_failed=True, condition="PodGC: node no longer exists")
                                   for p in orphans))
            self._missing_since.pop(name, None)

    async def _gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        doomed = [p for p in pods
                  if p["metadata"].get("deletionTimestamp") and not (p.get("spec") or {}).get("nodeName")]
        await asyncio.gather(*(self._delete(p, mark_failed=True) for p in doomed))

    async def _delete(self, pod: Obj, *, mark_failed: bool = False, condition: str = "") -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        try:
            if mark_failed and not _terminated(pod):
                # As Kubernetes: a pod the kubelet never finished is recorded as failed (and why, for
                # the pods of a vanished node).
                status: Obj = {"phase": "Failed"}
                if condition:
                    status["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                             "reason": "DeletionByPodGC", "message": condition,
                                             "lastTransitionTime": now_rfc3339()}]
                await self.client.patch(PODS, name, {"status": status}, "strategic", ns, subresource="status")
            await self.client.delete(PODS, name, ns, grace_period_seconds=0,
                                     preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
