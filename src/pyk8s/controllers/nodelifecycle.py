"""Node health, condition taints and taint-based eviction (Kubernetes' node-lifecycle controller with its
NoExecute taint manager, the taint-eviction controller).

Health: a node proves it is alive by renewing its Lease in `kube-node-lease` or by posting status (its
Ready condition's heartbeat). Every `node_monitor_period` the controller checks when it last saw either
change; a node silent past `node_monitor_grace_period` (`node_startup_grace_period` before its first
status) gets Ready — and the other kubelet conditions — set to Unknown, reason NodeStatusUnknown, "Kubelet
stopped posting node status." (NodeStatusNeverUpdated when it never posted one), and its pods are marked
not ready.

Taints follow the Ready condition: False → `node.kubernetes.io/not-ready`, Unknown →
`node.kubernetes.io/unreachable`, each as NoExecute and NoSchedule; the pressure conditions,
NetworkUnavailable and `spec.unschedulable` get their NoSchedule taints. A recovered node loses them.

Eviction: a pod on a node with NoExecute taints it does not tolerate is deleted at once; one that tolerates
them all for a while (tolerationSeconds, the smallest that applies) is deleted that long after the taint
was added; a toleration without seconds tolerates forever. A taint removed in time cancels the eviction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.cache import NODE_NAME_INDEX, DeletedFinalStateUnknown, node_name_index
from pyk8s.client.controller import Controller
from pyk8s.client.events import NORMAL, WARNING
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.timestamps import epoch

__all__ = ["NOT_READY", "UNREACHABLE", "NodeLifecycleController", "TaintEvictionController",
           "desired_taints", "tolerates", "toleration_seconds"]

log = logging.getLogger(__name__)


NODES = require("", "Node")
PODS = require("", "Pod")
LEASES = require("coordination.k8s.io", "Lease")
LEASE_NAMESPACE = "kube-node-lease"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# Conditions whose True status brings a NoSchedule taint (taint-nodes-by-condition).
CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
# The taints this controller owns; others (the user's, out-of-service …) are left as they are.
MANAGED_TAINTS = frozenset({NOT_READY, UNREACHABLE, UNSCHEDULABLE, *CONDITION_TAINTS.values()})
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

Obj = dict[str, Any]


def _condition(node: Obj, type_: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def desired_taints(node: Obj) -> list[tuple[str, str]]:
    """(key, effect) of the taints the node's conditions call for."""
    out: list[tuple[str, str]] = []
    ready = (_condition(node, "Ready") or {}).get("status")
    if ready == "False":
        out += [(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")]
    elif ready in ("Unknown", None) and _condition(node, "Ready") is not None:
        out += [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
    for type_, key in CONDITION_TAINTS.items():
        if (_condition(node, type_) or {}).get("status") == "True":
            out.append((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        out.append((UNSCHEDULABLE, "NoSchedule"))
    return out


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def toleration_seconds(pod: Obj, taints: list[Obj]) -> float | None:
    """How long the pod may stay on a node with these NoExecute taints: 0 when one is not tolerated,
    None for ever, else the smallest tolerationSeconds of the tolerations used (as getMinTolerationTime)."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    least: float | None = None
    for taint in taints:
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            return 0.0
        for t in used:
            seconds = t.get("tolerationSeconds")
            if seconds is not None:
                seconds = max(float(seconds), 0.0)
                least = seconds if least is None else min(least, seconds)
    return least


class NodeLifecycleController:
    """Runs the health monitor and the taint eviction side by side."""

    name = "nodelifecycle"

    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        opts = ctx.options
        self.grace = opts.node_monitor_grace_period
        self.startup_grace = opts.node_startup_grace_period
        self.period = opts.node_monitor_period
        node_inf = ctx.informers.informer(NODES)
        self.nodes = node_inf.lister
        self.leases = ctx.informers.informer(LEASES, LEASE_NAMESPACE).lister
        pod_inf = ctx.informers.informer(PODS)
        pod_inf.add_index(NODE_NAME_INDEX, node_name_index)
        self.pods = pod_inf.lister
        # Node → (the heartbeat last seen: Ready's lastHeartbeatTime and the Lease's renewTime, when this
        # controller saw it change, on its own monotonic clock).
        self._probes: dict[str, tuple[tuple[str, str], float]] = {}
        self.recorder = ctx.recorder("node-controller")
        self.eviction = TaintEvictionController(ctx)

    async def run(self) -> None:
        monitor = asyncio.create_task(self._monitor(), name="nodelifecycle monitor")
        try:
            await asyncio.gather(monitor, self.eviction.run())
        finally:
            monitor.cancel()

    async def _monitor(self) -> None:
        while True:
            try:
                await self.monitor_node_health()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("nodelifecycle: a health pass failed")
            await asyncio.sleep(self.period)

    async def monitor_node_health(self) -> None:
        now = time.monotonic()
        seen = set()
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            seen.add(name)
            try:
                node = await self._check_health(node, now)
                await self._sync_taints(node)
                if (_condition(node, "Ready") or {}).get("status") not in ("True", None):
                    await self._mark_pods_not_ready(name)
            except StatusError as e:
                if e.code not in (404, 409):  # gone, or changed meanwhile: the next pass sees it
                    raise
        for name in list(self._probes):
            if name not in seen:
                del self._probes[name]

    def _heartbeat(self, node: Obj) -> tuple[str, str]:
        ready = _condition(node, "Ready") or {}
        lease = self.leases.get(node["metadata"]["name"], LEASE_NAMESPACE)
        renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
        return str(ready.get("lastHeartbeatTime") or ""), renew

    async def _check_health(self, node: Obj, now: float) -> Obj:
        name = node["metadata"]["name"]
        beat = self._heartbeat(node)
        last = self._probes.get(name)
        if last is None or last[0] != beat:
            self._probes[name] = (beat, now)
            return node
        ready = _condition(node, "Ready")
        grace = self.startup_grace if ready is None else self.grace
        if now - last[1] <= grace:
            return node
        stamp = now_rfc3339()
        conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
        changed = False
        if ready is None:
            conditions.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.", "lastHeartbeatTime": stamp,
                               "lastTransitionTime": stamp})
            changed = True
        for c in conditions:
            if c.get("type") in KUBELET_CONDITIONS and c.get("status") != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
                changed = True
        if not changed:
            return node
        log.info("nodelifecycle: node %s silent for %.0fs; Ready is Unknown", name, now - last[1])
        updated = {**node, "status": {**(node.get("status") or {}), "conditions": conditions}}
        result: Obj = await self.client.update_status(NODES, updated)
        if (ready or {}).get("status") == "True":
            self.recorder.record({"kind": "Node", "apiVersion": "v1", **result}, NORMAL, "NodeNotReady",
                                 f"Node {name} status is now: NodeNotReady")
        return result

    async def _sync_taints(self, node: Obj) -> None:
        want = desired_taints(node)
        taints: list[Obj] = list((node.get("spec") or {}).get("taints") or [])
        have = {(t.get("key"), t.get("effect")) for t in taints if t.get("key") in MANAGED_TAINTS}
        if have == set(want):
            return
        stamp = now_rfc3339()
        kept = [t for t in taints
                if t.get("key") not in MANAGED_TAINTS or (t.get("key"), t.get("effect")) in want]
        for key, effect in want:
            if (key, effect) not in have:
                taint: Obj = {"key": key, "effect": effect}
                if effect == "NoExecute":
                    taint["timeAdded"] = stamp
                kept.append(taint)
        fresh = {**node, "spec": {**(node.get("spec") or {}), "taints": kept}}
        if not kept:
            fresh["spec"].pop("taints")
        await self.client.update(NODES, fresh)

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name):
            conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
            ready = [c for c in conditions if c.get("type") == "Ready" and c.get("status") == "True"]
            if not ready or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            ready[0].update(status="False", lastTransitionTime=now_rfc3339())
            status = {**pod["status"], "conditions": conditions}
            try:
                await self.client.update_status(PODS, {**pod, "status": status})
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
                continue
            self.recorder.record({"kind": "Pod", "apiVersion": "v1", **pod}, WARNING, "NodeNotReady",
                                 "Node is not ready")


class TaintEvictionController(Controller):
    """Keys are node names: each reconcile evicts what is due on that node and asks to be called again
    when the next toleration runs out."""

    name = "taint-eviction-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=min(ctx.options.workers, 5))
        self.client = ctx.client
        self.recorder = ctx.recorder("taint-eviction-controller")
        node_inf = ctx.informers.informer(NODES)
        pod_inf = ctx.informers.informer(PODS)
        pod_inf.add_index(NODE_NAME_INDEX, node_name_index)
        self.nodes, self.pods = node_inf.lister, pod_inf.lister
        node_inf.add_handler(self._node_changed, lambda _old, new: self._node_changed(new))
        pod_inf.add_handler(self._pod_changed, lambda _old, new: self._pod_changed(new))
        # (node, taint key, effect) → when a taint without timeAdded was first seen here (epoch seconds).
        self._first_seen: dict[tuple[str, str, str], float] = {}

    def _node_changed(self, node: Obj) -> None:
        if any(t.get("effect") == "NoExecute" for t in (node.get("spec") or {}).get("taints") or []):
            self.queue.add(node["metadata"]["name"])

    def _pod_changed(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            node = self.nodes.get(node_name)
            if node is not None:
                self._node_changed(node)

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        for k in [k for k in self._first_seen if k[0] == key]:
            if not any((t.get("key"), t.get("effect")) == k[1:] for t in taints):
                del self._first_seen[k]
        if not taints:
            return None
        # The eviction clock starts when the newest of the taints was added (first seen here for a taint
        # without timeAdded), or when the pod was created if it came later.
        tainted_at = 0.0
        for t in taints:
            added = epoch(t.get("timeAdded"))
            if added is None:
                added = self._first_seen.setdefault((key, str(t.get("key")), "NoExecute"), time.time())
            tainted_at = max(tainted_at, added)
        now = time.time()
        next_due: float | None = None
        for pod in self.pods.by_index(NODE_NAME_INDEX, key):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            seconds = toleration_seconds(pod, taints)
            if seconds is None:
                continue
            due = max(tainted_at, epoch(pod["metadata"].get("creationTimestamp")) or 0.0) + seconds
            if due <= now:
                await self._evict(pod)
            else:
                next_due = due if next_due is None else min(next_due, due)
        return None if next_due is None else max(next_due - now, 0.05)

    async def _evict(self, pod: Obj) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        log.info("taint eviction: deleting pod %s/%s", ns, name)
        self.recorder.record({"kind": "Pod", "apiVersion": "v1", **pod}, NORMAL, "TaintManagerEviction",
                             f"Marking for deletion Pod {ns}/{name}")
        try:
            await self.client.delete(PODS, name, ns,
                                     preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
