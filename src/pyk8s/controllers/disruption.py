"""PodDisruptionBudget status (Kubernetes' disruption controller), which pods/eviction decides by.

For each budget: the pods its selector matches in its namespace; how many should exist (`expectedPods`:
with an integer minAvailable, the pods found; with a percentage or maxUnavailable, the replicas their
controllers want, a ReplicaSet owned by a Deployment counting as the Deployment); how many must stay
healthy (`desiredHealthy`); how many are (`currentHealthy`: Ready, not being deleted, not just evicted);
and so `disruptionsAllowed`. An eviction records its pod in `disruptedPods`; the pod stops counting as
healthy until it is gone, or for DELETION_TIMEOUT at most if its deletion never happens. A budget whose
pods' controllers cannot be found allows no disruption (condition SyncFailed), as Kubernetes' fail-safe.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.disruption import budget_covers, set_disruption_allowed
from pyk8s.api.errors import StatusError
from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.pods import pod_ready
from pyk8s.client.cache import DeletedFinalStateUnknown, split_key
from pyk8s.client.controller import Controller
from pyk8s.controllers.controller_ref import controller_of, is_terminating, meta
from pyk8s.controllers.deployment_util import scaled_value
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.retry import requeue_on_conflict
from pyk8s.controllers.timestamps import parse_time

__all__ = ["DELETION_TIMEOUT", "DisruptionController"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PDBS = require("policy", "PodDisruptionBudget")
PODS = require("", "Pod")
REPLICASETS = require("apps", "ReplicaSet")
DEPLOYMENTS = require("apps", "Deployment")
STATEFULSETS = require("apps", "StatefulSet")
RCS = require("", "ReplicationController")
DELETION_TIMEOUT = 120.0  # seconds an evicted pod may take to go before it counts again (as Kubernetes)


class _SyncFailed(Exception):
    pass


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=min(ctx.options.workers, 5))
        self.client = ctx.client
        pdb_inf = ctx.informers.informer(PDBS)
        self.pdbs = pdb_inf.lister
        pod_inf = ctx.informers.informer(PODS)
        self.pods = pod_inf.lister
        self.owners = {(info.group, info.kind): ctx.informers.lister(info)
                       for info in (REPLICASETS, DEPLOYMENTS, STATEFULSETS, RCS)}
        pdb_inf.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), None)
        pod_inf.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    # --- events -------------------------------------------------------------------------------------

    def _pod_changed(self, pod: Obj | DeletedFinalStateUnknown) -> None:
        obj = pod.obj if isinstance(pod, DeletedFinalStateUnknown) else pod
        if isinstance(obj, dict):
            for pdb in self._budgets_of(obj):
                self.enqueue(pdb)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)
        if meta(old).get("labels") != meta(new).get("labels"):
            self._pod_changed(old)

    def _budgets_of(self, pod: Obj) -> list[Obj]:
        labels = meta(pod).get("labels") or {}
        return [pdb for pdb in self.pdbs.list(meta(pod).get("namespace")) if budget_covers(pdb, labels)]

    # --- sync ---------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        return await requeue_on_conflict(self.name, key, self._sync(key))

    async def _sync(self, key: str) -> float | None:
        ns, name = split_key(key)
        pdb = self.pdbs.get(name, ns)
        if pdb is None:
            return None
        old = pdb.get("status") or {}
        status = json_copy(old)
        status["observedGeneration"] = meta(pdb).get("generation", 1)
        recheck = None
        try:
            pods = self._pods_of(pdb)
            expected, desired = self._expectation(pdb, pods)
            disrupted, recheck = _pending_evictions(old.get("disruptedPods") or {}, pods, time.time())
            healthy = sum(1 for p in pods if not is_terminating(p) and meta(p).get("name") not in disrupted
                          and pod_ready(p))
            allowed = healthy - desired if expected > 0 and healthy > desired else 0
            status.update(disruptionsAllowed=allowed, currentHealthy=healthy, desiredHealthy=desired,
                          expectedPods=expected, disruptedPods=disrupted)
            if not disrupted:
                del status["disruptedPods"]  # omitted when empty, as Kubernetes writes it
            reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
            set_disruption_allowed(status, allowed > 0, reason)
        except _SyncFailed as e:
            log.warning("disruption: %s: %s; no disruption allowed", key, e)
            status["disruptionsAllowed"] = 0
            set_disruption_allowed(status, False, "SyncFailed", str(e))
            recheck = 10.0
        if status != old:
            await self.client.update_status(PDBS, {**pdb, "status": status}, ns)
        return recheck

    def _pods_of(self, pdb: Obj) -> list[Obj]:
        try:
            selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        except StatusError as e:
            raise _SyncFailed(e.message) from None
        return [p for p in self.pods.list(meta(pdb).get("namespace"))
                if selector.matches(meta(p).get("labels") or {})]

    def _expectation(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy), as getExpectedPodCount."""
        spec = pdb.get("spec") or {}
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        if max_unavailable is not None:
            expected = self._expected_scale(pods)
            return expected, max(0, expected - scaled_value(max_unavailable, expected, round_up=True))
        if min_available is not None:
            if isinstance(min_available, int) or not str(min_available).endswith("%"):
                return len(pods), int(min_available)
            expected = self._expected_scale(pods)
            return expected, scaled_value(min_available, expected, round_up=True)
        return 0, 0

    def _expected_scale(self, pods: list[Obj]) -> int:
        """The replicas the pods' controllers want, each controller counted once. Pods with no controller
        do not count (Kubernetes reports them as unmanaged)."""
        scales: dict[Any, int] = {}  # controller uid → its replicas
        for pod in pods:
            ref = controller_of(pod)
            if ref is not None and ref.get("uid") not in scales:
                scales[ref.get("uid")] = self._scale_of(meta(pod).get("namespace", ""), ref)
        return sum(scales.values())

    def _scale_of(self, namespace: str, ref: Obj) -> int:
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        lister = self.owners.get((group, ref.get("kind", "")))
        owner = lister.get(ref.get("name", ""), namespace) if lister is not None else None
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            raise _SyncFailed(f"found no scale for the controller {ref.get('kind')}/{ref.get('name')} of "
                              "its pods")
        parent = controller_of(owner)
        if ref.get("kind") == "ReplicaSet" and parent is not None and parent.get("kind") == "Deployment":
            return self._scale_of(namespace, parent)  # a Deployment's ReplicaSets share its scale
        replicas = (owner.get("spec") or {}).get("replicas")
        return 1 if replicas is None else int(replicas)


def _pending_evictions(disrupted: dict[str, str], pods: list[Obj], now: float) -> tuple[dict[str, str],
                                                                                     float | None]:
    """The evictions still awaiting their pod's deletion, and the seconds until the first one expires."""
    present = {meta(p).get("name"): p for p in pods}
    out: dict[str, str] = {}
    recheck: float | None = None
    for name, at in disrupted.items():
        pod = present.get(name)
        evicted = parse_time(at)
        if pod is None or is_terminating(pod) or evicted is None:
            continue
        left = evicted.timestamp() + DELETION_TIMEOUT - now
        if left <= 0:
            log.info("disruption: pod %s was evicted but not deleted within %.0fs", name, DELETION_TIMEOUT)
            continue
        out[name] = at
        recheck = left if recheck is None else min(recheck, left)
    return out, recheck


