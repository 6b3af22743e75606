"""The DaemonSet controller (Kubernetes' pkg/controller/daemon): one pod on every node that should run it.

A node should run the daemon pod when the pod's nodeSelector and required node affinity match it and it
tolerates the node's NoSchedule and NoExecute taints (with the tolerations Kubernetes adds to every
daemon pod); a pod already there may stay while only a NoSchedule taint is untolerated. Pods are created
unbound with a required node affinity `metadata.name In [node]`, as Kubernetes does, for the scheduler
to bind. Template changes roll out as RollingUpdate (maxUnavailable, maxSurge) or wait for deletions
(OnDelete); each template is a ControllerRevision and pods carry its hash in `controller-revision-hash`.
Orphan pods the selector matches are adopted.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.client.cache import OWNER_UID_INDEX, owner_uid_index, split_key
from pyk8s.client.client import Client, Obj
from pyk8s.client.controller import Controller
from pyk8s.client.events import WARNING, EventRecorder
from pyk8s.client.expectations import ControllerExpectations
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.controllers import history
from pyk8s.controllers.history import CONTROLLER_REVISION_HASH_LABEL, controller_of, controller_ref
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.pod_expectations import PodControl, handle_owned_pods, run_all
from pyk8s.controllers.replicaset import is_pod_available, is_pod_ready, pod_from_template

__all__ = ["DAEMONSETS", "DAEMON_TOLERATIONS", "NODES", "DaemonSetController", "add_daemon_tolerations",
           "new_daemonset_controller", "node_matches_affinity", "target_node", "tolerates"]

log = logging.getLogger(__name__)


DAEMONSETS = require("apps", "DaemonSet")
NODES = require("", "Node")
PODS = require("", "Pod")
TEMPLATE_GENERATION_LABEL = "pod-template-generation"

# util.AddOrUpdateDaemonPodTolerations: daemons keep running through these node conditions.
DAEMON_TOLERATIONS: tuple[Obj, ...] = tuple(
    {"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": effect}
    for key, effect in (("not-ready", "NoExecute"), ("unreachable", "NoExecute"),
                        ("disk-pressure", "NoSchedule"), ("memory-pressure", "NoSchedule"),
                        ("pid-pressure", "NoSchedule"), ("unschedulable", "NoSchedule")))
_NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                        "effect": "NoSchedule"}


def add_daemon_tolerations(spec: Obj) -> None:
    tolerations: list[Obj] = spec.setdefault("tolerations", [])
    wanted = list(DAEMON_TOLERATIONS) + ([_NETWORK_UNAVAILABLE] if spec.get("hostNetwork") else [])
    for tol in wanted:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
            tolerations.append(dict(tol))


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    """v1.Toleration.ToleratesTaint for any of the tolerations."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("key") and tol.get("key") != taint.get("key"):
            continue
        op = tol.get("operator") or "Equal"
        if op == "Exists" or (op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")):
            return True
    return False


def _requirement_matches(req: Obj, values: dict[str, str]) -> bool:
    key, op, want = req.get("key", ""), req.get("operator"), req.get("values") or []
    present = key in values
    value = values.get(key, "")
    if op == "In":
        return present and value in want
    if op == "NotIn":
        return not present or value not in want
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(want) == 1:
        try:
            have, bound = int(value), int(want[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_matches_affinity(spec: Obj, node: Obj) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution (terms ORed, requirements ANDed)."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in required.get("nodeSelectorTerms") or []:
        exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue  # an empty term matches nothing
        if all(_requirement_matches(r, labels) for r in exprs) and all(
                _requirement_matches(r, fields) for r in field_exprs):
            return True
    return False


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName, or before binding its `metadata.name In [node]`
    affinity (util.GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            values = req.get("values") or []
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


def _node_should_run(spec: Obj, node: Obj) -> tuple[bool, bool]:
    """(should run, should continue running) — nodeShouldRunDaemonPod."""
    if not node_matches_affinity(spec, node):
        return False, False
    tolerations = spec.get("tolerations") or []
    taints = (node.get("spec") or {}).get("taints") or []
    untolerated = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")
                   and not tolerates(tolerations, t)]
    if not untolerated:
        return True, True
    return False, not any(t.get("effect") == "NoExecute" for t in untolerated)


def _created(pod: Obj) -> str:
    return str(pod["metadata"].get("creationTimestamp") or "")


def _hash_of(pod: Obj) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)


def _scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, client: Client, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 2, failed_pod_backoff: float = 1.0) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.recorder = recorder
        self.expectations = ControllerExpectations()
        self.pod_control = PodControl(client, PODS, recorder, self.expectations)
        self.failed_pod_backoff = failed_pod_backoff
        self.max_failed_pod_backoff = 900.0
        self._failed_backoff: dict[str, tuple[float, float]] = {}  # "ns/ds/node" → (delay, since)
        self.sets = informers.informer(DAEMONSETS)
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.revisions = informers.informer(history.CONTROLLER_REVISIONS)
        self.pods.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.revisions.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        handle_owned_pods(self.pods, self._owner_key, self.expectations, self.queue)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        return f"{pod['metadata']['namespace']}/{ref['name']}"

    def _node_changed(self, _: object) -> None:
        for ds in self.sets.lister.list():
            self.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        o, n = old.get("metadata") or {}, new.get("metadata") or {}
        if o.get("labels") != n.get("labels") or (old.get("spec") or {}).get("taints") != (
                new.get("spec") or {}).get("taints"):
            self._node_changed(new)

    # Reconcile.

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        ds = self.sets.lister.get(name, ns)
        if ds is None:
            self.expectations.delete_expectations(key)
            for k in [k for k in self._failed_backoff if k.startswith(f"{key}/")]:
                del self._failed_backoff[k]
            return None
        if ds["metadata"].get("deletionTimestamp"):
            return None
        current, old_revisions, collisions = await self._revisions(ds)
        hash_ = current["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
        selector = selector_from_label_selector((ds.get("spec") or {}).get("selector"))
        claimed = await history.claim_pods(self.client, self.pods.lister, PODS, ds, DAEMONSETS, selector)
        by_node = self._pods_by_node(ds, claimed)
        requeue: float | None = None
        if self.expectations.satisfied(key):
            requeue = await self._manage(ds, key, by_node, hash_)
            by_node = self._pods_by_node(ds)  # after our creates and deletes, as far as the cache knows
        live = {f"{name}-{_hash_of(p)}" for pods in by_node.values() for p in pods}
        await history.truncate_history(self.client, old_revisions, live, (ds.get("spec") or {}).get(
            "revisionHistoryLimit"))
        await self._update_status(ds, by_node, hash_, collisions)
        return requeue

    def _pods_by_node(self, ds: Obj, pods: list[Obj] | None = None) -> dict[str, list[Obj]]:
        uid = ds["metadata"]["uid"]
        selector = selector_from_label_selector((ds.get("spec") or {}).get("selector"))
        out: dict[str, list[Obj]] = {}
        for pod in self.pods.lister.by_index(OWNER_UID_INDEX, uid) if pods is None else pods:
            meta = pod["metadata"]
            mine = (controller_of(pod) or {}).get("uid") == uid and selector.matches(meta.get("labels"))
            if not mine or meta.get("deletionTimestamp"):
                continue
            node = target_node(pod)
            if node:
                out.setdefault(node, []).append(pod)
        return out

    async def _revisions(self, ds: Obj) -> tuple[Obj, list[Obj], int]:
        """constructHistory: the current revision (created, or an old equal one renumbered) and the rest."""
        candidates = self.revisions.lister.by_index(OWNER_UID_INDEX, ds["metadata"]["uid"])
        owned = history.owned_revisions(candidates, ds)
        data = history.template_patch(ds)
        collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
        equal = [r for r in history.sort_revisions(owned) if r.get("data") == data]
        next_number = history.next_revision(owned)
        if equal:
            current = equal[-1]
            if int(current.get("revision") or 0) < next_number - 1:
                current = await history.update_revision_number(self.client, current, next_number)
        else:
            draft = {"data": data, "revision": next_number}
            current, collisions = await history.create_revision(
                self.client, draft, ds, DAEMONSETS, collisions, CONTROLLER_REVISION_HASH_LABEL)
        old = [r for r in owned if r["metadata"]["name"] != current["metadata"]["name"]]
        return current, old, collisions

    def _new_pod(self, ds: Obj, node: str, hash_: str) -> Obj:
        template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        pod = pod_from_template(template, ds, controller_ref(ds, DAEMONSETS))
        labels = pod["metadata"].setdefault("labels", {})
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
        labels[TEMPLATE_GENERATION_LABEL] = str(ds["metadata"].get("generation") or 1)
        spec = pod["spec"]
        add_daemon_tolerations(spec)
        # ReplaceDaemonSetPodNodeNameNodeAffinity: only this node, whatever the template required.
        affinity = spec.setdefault("affinity", {})
        node_affinity = affinity.setdefault("nodeAffinity", {})
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        return pod

    async def _manage(self, ds: Obj, key: str, by_node: dict[str, list[Obj]], hash_: str) -> float | None:
        spec = ds.get("spec") or {}
        template_spec = copy.deepcopy((spec.get("template") or {}).get("spec") or {})
        add_daemon_tolerations(template_spec)
        create: list[str] = []
        delete: list[Obj] = []
        backoff_wait: float | None = None
        nodes = {n["metadata"]["name"]: n for n in self.nodes.lister.list()}
        for node_name, node in nodes.items():
            should_run, should_continue = _node_should_run(template_spec, node)
            pods = sorted(by_node.get(node_name, []), key=_created)
            if should_run and not pods:
                create.append(node_name)
            elif should_continue:
                failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
                for p in failed:
                    wait = self._failed_pod_backoff(f"{key}/{node_name}")
                    if wait > 0:  # a kubelet that keeps rejecting the pod must not make us hot-loop
                        backoff_wait = wait if backoff_wait is None else min(backoff_wait, wait)
                        continue
                    self.recorder.record(ds, WARNING, "FailedDaemonPod",
                                         f"Found failed daemon pod {p['metadata']['namespace']}/"
                                         f"{p['metadata']['name']} on node {node_name}, will try to kill it")
                    delete.append(p)
                alive = [p for p in pods if p not in failed]  # a failed one is replaced on the next sync
                if len(alive) > 1 and not self._surging(ds, alive, hash_):
                    delete.extend(alive[1:])  # keep the oldest
            else:
                delete.extend(pods)
        delete.extend(p for n, pods in by_node.items() if n not in nodes for p in pods)
        requeue: float | None = None
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" and not (
                create or delete):
            more_create, more_delete, requeue = self._rolling_update(ds, by_node, nodes, hash_)
            create += more_create
            delete += more_delete
        await self._sync_nodes(ds, key, create, delete, hash_)
        if backoff_wait is not None:
            requeue = backoff_wait if requeue is None else min(requeue, backoff_wait)
        return requeue

    def _failed_pod_backoff(self, key: str) -> float:
        """Seconds until a failed pod on this node may be deleted again (failedPodsBackoff: 1 s doubling
        to 15 min); 0 means now, and starts the next, longer, wait."""
        now = time.monotonic()
        delay, since = self._failed_backoff.get(key, (0.0, 0.0))
        if delay and now - since < delay:
            return delay - (now - since)
        self._failed_backoff[key] = (min(delay * 2, self.max_failed_pod_backoff) if delay
                                     else self.failed_pod_backoff, now)
        return 0.0

    def _surging(self, ds: Obj, pods: list[Obj], hash_: str) -> bool:
        """Two pods on a node during a surge rollout: the old one goes once the new one is available."""
        surge = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        labels = [_hash_of(p) for p in pods]
        return bool(surge.get("maxSurge")) and len(pods) == 2 and labels.count(hash_) == 1

    def _rolling_update(self, ds: Obj, by_node: dict[str, list[Obj]], nodes: dict[str, Obj],
                        hash_: str) -> tuple[list[str], list[Obj], float | None]:
        spec = ds.get("spec") or {}
        rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        desired = sum(1 for n in nodes.values() if _node_should_run(self._tolerant(ds), n)[0])
        max_surge = _scaled(rolling.get("maxSurge", 0), desired, True)
        max_unavailable = _scaled(rolling.get("maxUnavailable", 1), desired, True)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        create: list[str] = []
        delete: list[Obj] = []
        waiting = False

        def available(p: Obj) -> bool:
            return is_pod_available(p, min_ready, now)

        def new_and_old(pods: list[Obj]) -> tuple[Obj | None, Obj | None]:
            new = [p for p in pods if _hash_of(p) == hash_]
            old = [p for p in pods if p not in new]
            return (new[0] if new else None), (old[0] if old else None)

        if max_surge == 0:
            unavailable = 0
            allowed: list[Obj] = []
            candidates: list[Obj] = []
            for node_name in sorted(by_node):
                new, old = new_and_old(by_node[node_name])
                if old is None:
                    if new is None or not available(new):
                        unavailable += 1
                        waiting = waiting or new is not None
                elif not available(old):
                    allowed.append(old)
                else:
                    candidates.append(old)
            remaining = max(0, max_unavailable - unavailable)
            delete = allowed + candidates[:remaining]
        else:
            surging = 0
            for node_name in sorted(by_node):
                new, old = new_and_old(by_node[node_name])
                if old is None:
                    continue
                if new is None:
                    if not available(old):
                        delete.append(old)
                    elif surging < max_surge:
                        create.append(node_name)
                        surging += 1
                elif available(new):
                    delete.append(old)
                else:
                    surging += 1
                    waiting = True
        # Readiness does not wake us when minReadySeconds is what we wait for.
        return create, delete, (float(min_ready) if waiting and min_ready else None)

    def _tolerant(self, ds: Obj) -> Obj:
        spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
        add_daemon_tolerations(spec)
        return spec

    async def _sync_nodes(self, ds: Obj, key: str, create: list[str], delete: list[Obj], hash_: str) -> None:
        if not create and not delete:
            return
        self.expectations.set_expectations(key, len(create), len(delete))
        await run_all([*(self.pod_control.create(ds, key, functools.partial(self._new_pod, ds, n, hash_))
                         for n in create), *(self.pod_control.delete(ds, key, p) for p in delete)])

    async def _update_status(self, ds: Obj, by_node: dict[str, list[Obj]], hash_: str,
                             collisions: int) -> None:
        spec = ds.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        template_spec = self._tolerant(ds)
        desired = scheduled = misscheduled = ready = available = updated = 0
        for node in self.nodes.lister.list():
            should_run, _ = _node_should_run(template_spec, node)
            pods = by_node.get(node["metadata"]["name"], [])
            if should_run:
                desired += 1
                if pods:
                    scheduled += 1
                    pod = sorted(pods, key=_created)[0]
                    if is_pod_ready(pod):
                        ready += 1
                        if is_pod_available(pod, min_ready, now):
                            available += 1
                    if any(_hash_of(p) == hash_ for p in pods):
                        updated += 1
            elif pods:
                misscheduled += 1
        status: Obj = copy.deepcopy(ds.get("status") or {})
        status.update(currentNumberScheduled=scheduled, numberMisscheduled=misscheduled,
                      desiredNumberScheduled=desired, numberReady=ready, updatedNumberScheduled=updated,
                      numberAvailable=available, numberUnavailable=desired - available,
                      observedGeneration=ds["metadata"].get("generation") or 1)
        if collisions:
            status["collisionCount"] = collisions
        for field in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if not status[field]:
                del status[field]
        if status != (ds.get("status") or {}):
            await history.write_status(self.client, DAEMONSETS, ds, status)


def new_daemonset_controller(ctx: ControllerContext) -> DaemonSetController:
    return DaemonSetController(ctx.client, ctx.informers, ctx.recorder("daemonset-controller"),
                               workers=ctx.options.workers)
