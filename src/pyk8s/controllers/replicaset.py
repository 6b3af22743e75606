"""The ReplicaSet and ReplicationController controllers (Kubernetes' pkg/controller/replicaset): one
implementation, two kinds.

Each sync claims the active pods (adopting matching orphans, releasing owned pods that no longer match),
creates the missing pods in slow-start batches (1, 2, 4, … so a template the API refuses fails once, not
500 times) or deletes the surplus, those least worth keeping first, and writes status. Expectations keep
a sync from acting again before the informer has seen its own creates and deletes.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import Selector, selector_from_label_selector, selector_from_set
from pyk8s.api.meta import now_rfc3339
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, object_key, owner_uid_index
from pyk8s.client.controller import Controller
from pyk8s.client.events import NORMAL, WARNING, EventRecorder
from pyk8s.client.expectations import ControllerExpectations
from pyk8s.controllers.controller_ref import claim, controller_of, is_active_pod, is_terminating, meta
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.retry import requeue_on_conflict
from pyk8s.controllers.timestamps import parse_time

__all__ = ["BURST_REPLICAS", "POD_DELETION_COST", "ReplicaSetController", "is_pod_available", "is_pod_ready",
           "new_replicaset_controller", "new_replication_controller", "pod_from_template", "pods_to_delete",
           "slow_start_batch"]


Obj = dict[str, Any]

BURST_REPLICAS = 500  # creates or deletes per sync (Kubernetes' BurstReplicas)
SLOW_START_INITIAL_BATCH = 1
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


PODS = require("", "Pod")
REPLICASETS = require("apps", "ReplicaSet")
REPLICATION_CONTROLLERS = require("", "ReplicationController")


# --- pods ----------------------------------------------------------------------------------------------

def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return dict(c)
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    cond = _ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def pod_from_template(template: Obj, owner: Obj, owner_ref: Obj, prefix: str | None = None) -> Obj:
    """controller.GetPodFromTemplate: the template's labels, annotations, finalizers and spec, named
    `<owner>-<random>`, controlled by owner."""
    tmeta = template.get("metadata") or {}
    pod_meta: Obj = {"generateName": prefix if prefix is not None else f"{meta(owner)['name']}-",
                     "namespace": meta(owner).get("namespace"), "ownerReferences": [owner_ref]}
    for field in ("labels", "annotations", "finalizers"):
        if tmeta.get(field):
            pod_meta[field] = copy.deepcopy(tmeta[field])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((meta(pod).get("annotations") or {}).get(POD_DELETION_COST, 0))
    except ValueError:
        return 0


_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _restarts(pod: Obj) -> int:
    return max((int(c.get("restartCount") or 0)
                for c in (pod.get("status") or {}).get("containerStatuses") or []), default=0)


def _ts(value: str | None) -> float:
    t = parse_time(value)
    return t.timestamp() if t is not None else 0.0


def pods_to_delete(pods: list[Obj], related: list[Obj], count: int) -> list[Obj]:
    """The `count` pods to delete first, by Kubernetes' ActivePodsWithRanks: unassigned before assigned,
    Pending < Unknown < Running, not ready before ready, lower deletion cost first, pods doubled up on a
    node (counting the related pods) first, most recently ready first, more restarts first, newest first."""
    if count >= len(pods):
        return list(pods)
    on_node = Counter((p.get("spec") or {}).get("nodeName") for p in related if is_active_pod(p))

    def rank(pod: Obj) -> tuple[Any, ...]:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        ready = is_pod_ready(pod)
        cond = _ready_condition(pod) or {}
        ready_since = _ts(cond.get("lastTransitionTime")) if ready else 0.0
        return (bool(node),
                _PHASE_ORDER.get(str((pod.get("status") or {}).get("phase")), 0),
                ready,
                _deletion_cost(pod),
                -on_node[node] if node else 0,
                -ready_since,
                -_restarts(pod),
                -_ts(created) if (created := meta(pod).get("creationTimestamp")) else float("-inf"))

    return sorted(pods, key=rank)[:count]


async def slow_start_batch(count: int, initial: int,
                           fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Call fn count times in batches of initial, 2·initial, 4·initial … concurrently within a batch;
    stop after the first batch with a failure. Returns (successes, first error)."""
    successes = 0
    remaining = count
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(errors)
        for e in errors:
            if isinstance(e, asyncio.CancelledError):
                raise e
        if errors:
            first = errors[0]
            return successes, first if isinstance(first, Exception) else Exception(str(first))
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# --- the controller ------------------------------------------------------------------------------------

class ReplicaSetController(Controller):
    """Keeps `spec.replicas` active pods for every ReplicaSet (or ReplicationController)."""

    def __init__(self, ctx: ControllerContext, info: ResourceInfo, *, component: str,
                 workers: int | None = None) -> None:
        self.name = component
        super().__init__(workers=workers or ctx.options.workers)
        self.ctx = ctx
        self.client = ctx.client
        self.info = info
        self.kind = info.kind
        self.api_version = f"{info.group}/{info.version}" if info.group else info.version
        self.recorder: EventRecorder = ctx.recorder(component)
        self.expectations = ControllerExpectations()
        # Pods deleted and not yet seen going (Kubernetes' UIDTrackingControllerExpectations).
        self._deleting: dict[str, set[str]] = {}
        self.burst_replicas = BURST_REPLICAS

        self.owner_informer = ctx.informers.informer(info)
        self.owners = self.owner_informer.lister
        self.pod_informer = ctx.informers.informer(PODS)
        self.pod_informer.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.pods = self.pod_informer.lister
        self.owner_informer.add_handler(self.enqueue, self._owner_updated, self._owner_deleted)
        self.pod_informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # --- selectors and lookups ---

    def selector(self, owner: Obj) -> Selector:
        spec = owner.get("spec") or {}
        if self.kind == "ReplicationController":
            return selector_from_set(spec.get("selector") or
                                     ((spec.get("template") or {}).get("metadata") or {}).get("labels"))
        return selector_from_label_selector(spec.get("selector"))

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") != self.kind:
            return None
        owner = self.owners.get(ref.get("name", ""), namespace)
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            return None
        return owner

    def _owners_of_orphan(self, pod: Obj) -> list[Obj]:
        labels = meta(pod).get("labels")
        if not labels:
            return []
        out = []
        for owner in self.owners.list(meta(pod).get("namespace")):
            try:
                if self.selector(owner).matches(labels):
                    out.append(owner)
            except StatusError:
                continue
        return out

    # --- event handlers: they only enqueue keys (and count expectations) ---

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _owner_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = object_key(obj)
        self.expectations.delete_expectations(key)
        self._deleting.pop(key, None)
        self.enqueue(obj)

    def _pod_added(self, pod: Obj) -> None:
        if is_terminating(pod):
            self._pod_deleted(pod)  # a restarted informer may see a pod already being deleted
            return
        ns = meta(pod).get("namespace", "")
        ref = controller_of(pod)
        if ref is not None:
            owner = self._resolve(ns, ref)
            if owner is not None:
                key = object_key(owner)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for owner in self._owners_of_orphan(pod):
            self.enqueue(owner)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return  # a resync
        ns = meta(new).get("namespace", "")
        if is_terminating(new) and not is_terminating(old):
            self._observe_deletion(new)
        labels_changed = meta(old).get("labels") != meta(new).get("labels")
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref is not None and old_ref != new_ref:
            owner = self._resolve(ns, old_ref)
            if owner is not None:
                self.enqueue(owner)
        if new_ref is not None:
            owner = self._resolve(ns, new_ref)
            if owner is not None:
                key = object_key(owner)
                self.queue.add(key)
                min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
                if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                    # Available only minReadySeconds from now: look again then (plus a second of slack).
                    self.queue.add_after(key, min_ready + 1)
            return
        if labels_changed or old_ref != new_ref:
            for owner in self._owners_of_orphan(new):
                self.enqueue(owner)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ref = controller_of(pod)
        if ref is None:
            return
        owner = self._resolve(meta(pod).get("namespace", ""), ref)
        if owner is None:
            return
        self._observe_deletion(pod)
        self.enqueue(owner)

    def _observe_deletion(self, pod: Obj) -> None:
        ref = controller_of(pod)
        if ref is None:
            return
        ns = meta(pod).get("namespace", "")
        owner_key = f"{ns}/{ref.get('name', '')}"
        pending = self._deleting.get(owner_key)
        pod_key = object_key(pod)
        if pending is not None and pod_key in pending:
            pending.discard(pod_key)
            self.expectations.deletion_observed(owner_key)

    # --- reconcile ---

    async def reconcile(self, key: str) -> float | None:
        return await requeue_on_conflict(self.name, key, self._sync(key))

    async def _sync(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        cached = self.owners.get(name, ns)
        if cached is None:
            self.expectations.delete_expectations(key)
            self._deleting.pop(key, None)
            return None
        owner = copy.deepcopy(cached)
        owner.setdefault("kind", self.kind)
        owner.setdefault("apiVersion", self.api_version)
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector(owner)

        owned = self.pods.by_index(OWNER_UID_INDEX, meta(owner).get("uid", ""))
        candidates = {object_key(p): p for p in owned}
        for p in self.pods.list(ns, selector):
            candidates.setdefault(object_key(p), p)
        active = [p for p in candidates.values() if is_active_pod(p)]
        pods = await claim(self.client, PODS, owner, self.api_version, self.kind, selector, active,
                           lambda p: True, lambda: self._can_adopt(owner))

        error: Exception | None = None
        if needs_sync and not is_terminating(owner):
            error = await self._manage(owner, key, pods)
        requeue = await self._update_status(owner, pods, error)
        if error is not None:
            raise error
        return requeue

    async def _can_adopt(self, owner: Obj) -> bool:
        """RecheckDeletionTimestamp: adopt only for an owner that is, per the API itself, still there."""
        m = meta(owner)
        try:
            fresh = await self.client.get(self.info, m["name"], m.get("namespace"))
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return meta(fresh).get("uid") == m.get("uid") and not is_terminating(fresh)

    async def _manage(self, owner: Obj, key: str, pods: list[Obj]) -> Exception | None:
        wanted = int((owner.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(pods) - wanted
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            ref = {"apiVersion": self.api_version, "kind": self.kind, "name": meta(owner)["name"],
                   "uid": meta(owner)["uid"], "controller": True, "blockOwnerDeletion": True}
            template = (owner.get("spec") or {}).get("template") or {}

            async def create() -> None:
                pod = pod_from_template(template, owner, ref)
                try:
                    created = await self.client.create(PODS, pod, meta(owner).get("namespace"))
                except StatusError as e:
                    if e.reason == "Forbidden" and "being terminated" in e.message:
                        return  # the namespace is going away; nothing to report (NamespaceTerminatingCause)
                    self.recorder.record(owner, WARNING, "FailedCreate", f"Error creating: {e.message}")
                    raise
                self.recorder.record(owner, NORMAL, "SuccessfulCreate",
                                     f"Created pod: {meta(created).get('name', '')}")

            successes, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, create)
            for _ in range(count - successes):
                self.expectations.creation_observed(key)
            return error
        if diff > 0:
            count = min(diff, self.burst_replicas)
            victims = pods_to_delete(pods, pods, count)
            pending = self._deleting.setdefault(key, set())
            pending.update(object_key(p) for p in victims)
            self.expectations.expect_deletions(key, len(victims))
            results = await asyncio.gather(*(self._delete(owner, key, p) for p in victims),
                                           return_exceptions=True)
            for r in results:
                if isinstance(r, asyncio.CancelledError):
                    raise r
            errors = [r for r in results if isinstance(r, Exception)]
            return errors[0] if errors else None
        return None

    async def _delete(self, owner: Obj, key: str, pod: Obj) -> None:
        m = meta(pod)
        try:
            await self.client.delete(PODS, m["name"], m.get("namespace"))
        except StatusError as e:
            self._observe_deletion(pod)  # it will not be seen going: do not wait for it
            if e.code == 404:
                return
            self.recorder.record(owner, WARNING, "FailedDelete", f"Error deleting: {e.message}")
            raise
        self.recorder.record(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {m['name']}")

    # --- status ---

    def calculate_status(self, owner: Obj, pods: list[Obj], error: Exception | None) -> Obj:
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        now = datetime.now(UTC)
        status = copy.deepcopy(owner.get("status") or {})
        status["replicas"] = len(pods)
        status["fullyLabeledReplicas"] = sum(
            1 for p in pods if template_labels.items() <= (meta(p).get("labels") or {}).items())
        status["readyReplicas"] = sum(1 for p in pods if is_pod_ready(p))
        status["availableReplicas"] = sum(1 for p in pods if is_pod_available(p, min_ready, now))
        status["observedGeneration"] = meta(owner).get("generation", 0)
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        if error is not None:
            creating = len(pods) < int(spec.get("replicas", 1) or 0)
            reason = "FailedCreate" if creating else "FailedDelete"
            message = error.message if isinstance(error, StatusError) else str(error)
            if old is not None and old.get("reason") == reason and old.get("message") == message:
                conditions.append(old)
            else:
                conditions.append({"type": "ReplicaFailure", "status": "True", "reason": reason,
                                   "message": message, "lastTransitionTime": now_rfc3339()})
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        for zero_omitted in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if not status[zero_omitted]:
                del status[zero_omitted]
        return status

    async def _update_status(self, owner: Obj, pods: list[Obj], error: Exception | None) -> float | None:
        status = self.calculate_status(owner, pods, error)
        if status != (owner.get("status") or {}):
            obj = owner
            for attempt in range(2):
                try:
                    obj = await self.client.update_status(self.info, {**obj, "status": status})
                    break
                except StatusError as e:
                    if e.code == 404:
                        return None
                    if e.code != 409 or attempt:
                        raise
                    m = meta(owner)
                    obj = await self.client.get(self.info, m["name"], m.get("namespace"))
                    status["observedGeneration"] = meta(obj).get("generation", 0)
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        ready, available = status.get("readyReplicas", 0), status.get("availableReplicas", 0)
        if error is None and min_ready > 0 and ready != available:
            return float(min_ready)
        return None


def new_replicaset_controller(ctx: ControllerContext) -> ReplicaSetController:
    return ReplicaSetController(ctx, REPLICASETS, component="replicaset-controller")


def new_replication_controller(ctx: ControllerContext) -> ReplicaSetController:
    return ReplicaSetController(ctx, REPLICATION_CONTROLLERS, component="replication-controller")
