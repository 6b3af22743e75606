"""The scheduler: informers feed the cache and the queue; one loop pops a pod, runs the cycle, assumes the
pod on the chosen node and hands the binding to a background task, so binding never holds up the next
pod. Failures record FailedScheduling, set the PodScheduled condition and may preempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.client import Client
from pyk8s.client.events import EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.leader import LeaderElectionConfig, LeaderElector
from pyk8s.scheduler import queue as q
from pyk8s.scheduler.cache import Cache
from pyk8s.scheduler.framework import FitError, Framework, Plugin
from pyk8s.scheduler.nodeinfo import NodeInfo, PodInfo
from pyk8s.scheduler.preemption import NAME as PREEMPTION
from pyk8s.scheduler.preemption import Candidate, preempt
from pyk8s.scheduler.registry import default_plugins
from pyk8s.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)
Obj = dict[str, Any]


PODS = require("", "Pod")
NODES = require("", "Node")
NAMESPACES = require("", "Namespace")
PDBS = require("policy", "PodDisruptionBudget")


def _unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def _assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _node_relevant(node: Obj) -> tuple[Any, ...]:
    """What of a node matters to scheduling; heartbeats change none of it."""
    status = node.get("status") or {}
    return (
        (node.get("metadata") or {}).get("labels"),
        node.get("spec"),
        status.get("allocatable"),
        [i.get("names") for i in status.get("images") or []],
    )


class Scheduler:
    def __init__(
        self,
        client: Client,
        informers: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        name: str = "default-scheduler",
        scoring_strategy: str = "LeastAllocated",
        percentage_of_nodes_to_score: int = 0,
        plugins: list[Plugin] | None = None,
        preemption: bool = True,
        leader_election: bool = False,
        identity: str | None = None,
        bind_concurrency: int = 64,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.informers = informers
        self.recorder = recorder
        self.name = name
        self.rng = rng or random.Random()
        self.framework = Framework(
            plugins or default_plugins(scoring_strategy),
            percentage_of_nodes_to_score=percentage_of_nodes_to_score,
            rng=self.rng,
        )
        self.preemption = preemption
        self.leader_election = leader_election
        self.identity = identity
        self.cache = Cache()
        self.queue = q.SchedulingQueue()
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._nominated: dict[str, dict[str, PodInfo]] = {}  # node → uid → pod waiting for it
        self._nominated_on: dict[str, str] = {}  # uid → node
        self._conditions: dict[str, tuple[str, str]] = {}  # uid → (message, nominated) last written
        self.scheduled = 0  # bindings that succeeded, for tests and benchmarks

        self.nodes = informers.informer(NODES)
        self.pods = informers.informer(PODS)
        self.namespaces = informers.informer(NAMESPACES)
        self.pdbs = informers.informer(PDBS)
        self.cache.namespace_labels = self._namespace_labels
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.namespaces.add_handler(None, self._namespace_updated, None)

    # --- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled; with leader election, only while holding the Lease
        kube-system/kube-scheduler."""
        if not self.leader_election:
            await self._run()
            return
        cfg = LeaderElectionConfig("kube-scheduler")
        if self.identity:
            cfg.identity = self.identity
        while True:
            await LeaderElector(self.client, cfg, on_started_leading=self._run).run()

    async def _run(self) -> None:
        self.informers.start()
        # Its own informers only: the factory may be shared with the controller manager's.
        await self.informers.wait_for_sync((self.nodes, self.pods, self.namespaces, self.pdbs))
        try:
            while True:
                qp = await self.queue.pop()
                try:
                    self.schedule_one(qp)
                except Exception:  # a bug must not stop scheduling of other pods
                    log.exception("scheduling %s failed", qp.key)
                    self.queue.add_unschedulable(qp.pod, error=True)
                await asyncio.sleep(0)  # let bindings and informer events run between pods
        finally:
            await cancel_and_wait(list(self._tasks))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _namespace_labels(self, ns: str) -> dict[str, str] | None:
        obj = self.namespaces.lister.get(ns)
        return None if obj is None else (obj.get("metadata") or {}).get("labels") or {}

    # --- the cycle --------------------------------------------------------------------------------

    def _with_nominated(self, pod: PodInfo) -> Any:
        """Nodes as they will be once pods nominated to them with at least this priority land."""
        if not self._nominated:
            return None

        def view(node: NodeInfo) -> NodeInfo:
            waiting = self._nominated.get(node.name)
            if not waiting:
                return node
            add = [p for p in waiting.values() if p.uid != pod.uid and p.priority >= pod.priority]
            if not add:
                return node
            clone = node.clone()
            for p in add:
                clone.add_pod(p)
            return clone

        return view

    def schedule_one(self, qp: q.QueuedPod) -> None:
        meta = qp.pod["metadata"]
        pod = self.pods.lister.get(meta["name"], meta["namespace"]) or qp.pod
        if (
            pod["metadata"].get("uid") != meta.get("uid")
            or _assigned(pod)
            or pod["metadata"].get("deletionTimestamp")
            or not self._responsible(pod)
        ):
            self.queue.done(qp.key)
            return
        pi = PodInfo.of(pod)
        snap = self.cache.snapshot()
        try:
            result, _ = self.framework.schedule(pi, snap, self._with_nominated(pi))
        except FitError as err:
            nominated = ""
            plugins = {st.plugin for st in err.diagnosis.node_status.values() if st.plugin}
            if self.preemption and snap.nodes:
                cand, msg = preempt(
                    self.framework, pi, snap, err.diagnosis, self.pdbs.lister.list(), self.rng
                )
                err.diagnosis.post_filter_msg = msg
                if cand is not None:
                    nominated = cand.node
                    self._nominate(pi, nominated)
                    self._spawn(self._evict(pod, cand))
                    plugins.add(PREEMPTION)
            self._failed(qp, pod, str(err), plugins, nominated)
            return
        node = result.node
        assumed = {**pod, "spec": {**pod["spec"], "nodeName": node}}
        self.cache.assume(pi.with_object(assumed), node)
        self.queue.done(qp.key)
        self._unnominate(pi.uid)
        self._spawn(self._bind(pod, node))

    def _failed(self, qp: q.QueuedPod, pod: Obj, message: str, plugins: set[str], nominated: str) -> None:
        log.debug("unable to schedule %s: %s", qp.key, message)
        self.recorder.record(pod, "Warning", "FailedScheduling", message)
        self.queue.add_unschedulable(pod, plugins)
        uid = pod["metadata"]["uid"]
        if self._conditions.get(uid) != (message, nominated):
            self._conditions[uid] = (message, nominated)
            self._spawn(self._set_unschedulable(pod, message, nominated))

    async def _set_unschedulable(self, pod: Obj, message: str, nominated: str) -> None:
        status: Obj = {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                }
            ]
        }
        if nominated:
            status["nominatedNodeName"] = nominated
        meta = pod["metadata"]
        with contextlib.suppress(StatusError):
            await self.client.patch(
                PODS, meta["name"], {"status": status}, "strategic", meta["namespace"], subresource="status",
                decode=False,
            )

    async def _bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        try:
            async with self._bind_slots:
                await self.client.create_subresource(PODS, meta["name"], "binding", body, meta["namespace"],
                                                     decode=False)
        except asyncio.CancelledError:  # stopped (or leadership lost): the pod is not placed
            self.cache.forget(meta["uid"])
            self.queue.add(pod)
            raise
        except Exception as err:
            self.cache.forget(meta["uid"])
            self.queue.move_all(q.ASSIGNED_POD_DELETE)
            if isinstance(err, StatusError) and err.code == 404:
                return
            self.recorder.record(pod, "Warning", "FailedScheduling", f"Binding rejected: {err}")
            self.queue.add_unschedulable(pod, error=True)
            return
        self.cache.finish_binding(meta["uid"])
        self._conditions.pop(meta["uid"], None)
        self.scheduled += 1
        self.recorder.record(
            pod, "Normal", "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}"
        )

    async def _evict(self, preemptor: Obj, cand: Candidate) -> None:
        """prepareCandidate: mark each victim with DisruptionTarget, delete it, tell it why; lower-priority
        pods nominated to the node lose their nomination."""
        priority = int(preemptor["spec"].get("priority") or 0)
        for p in list(self._nominated.get(cand.node, {}).values()):
            if p.priority < priority:
                self._unnominate(p.uid)
                meta = p.pod["metadata"]
                with contextlib.suppress(StatusError):
                    await self.client.patch(
                        PODS,
                        meta["name"],
                        {"status": {"nominatedNodeName": None}},
                        "merge",
                        meta["namespace"],
                        subresource="status",
                    )
        for v in cand.victims:
            meta = v.pod["metadata"]
            cond = {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": f"{self.name}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": now_rfc3339(),
            }
            try:
                await self.client.patch(
                    PODS,
                    meta["name"],
                    {"status": {"conditions": [cond]}},
                    "strategic",
                    meta["namespace"],
                    subresource="status",
                )
                await self.client.delete(PODS, meta["name"], meta["namespace"])
            except StatusError as err:
                if err.code != 404:
                    log.warning("preempting %s/%s: %s", meta["namespace"], meta["name"], err)
                continue
            self.recorder.record(
                v.pod,
                "Normal",
                "Preempted",
                f"Preempted by pod {preemptor['metadata']['uid']} on node {cand.node}",
            )

    # --- nominated pods ---------------------------------------------------------------------------

    def _nominate(self, pi: PodInfo, node: str) -> None:
        self._unnominate(pi.uid)
        self._nominated.setdefault(node, {})[pi.uid] = pi
        self._nominated_on[pi.uid] = node

    def _unnominate(self, uid: str) -> None:
        node = self._nominated_on.pop(uid, None)
        if node is not None:
            waiting = self._nominated.get(node, {})
            waiting.pop(uid, None)
            if not waiting:
                self._nominated.pop(node, None)

    # --- informer events --------------------------------------------------------------------------

    def _responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        return (spec.get("schedulerName") or "default-scheduler") == self.name and phase not in (
            "Succeeded",
            "Failed",
        )

    def _node_added(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all(q.NODE_ADD)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        if _node_relevant(old) != _node_relevant(new):
            self.queue.move_all(q.NODE_UPDATE)

    def _node_deleted(self, node: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.remove_node(_unwrap(node)["metadata"]["name"])

    def _pod_added(self, pod: Obj) -> None:
        if _assigned(pod):
            self._unnominate(pod["metadata"]["uid"])
            self.cache.add_pod(pod)
            if self.queue.has_parked:
                self.queue.move_all(q.ASSIGNED_POD_ADD)
        elif self._responsible(pod) and not pod["metadata"].get("deletionTimestamp"):
            self._track_nomination(pod)
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _assigned(new):
            key = f"{new['metadata']['namespace']}/{new['metadata']['name']}"
            if not _assigned(old):
                self.queue.delete(key)
                self._unnominate(new["metadata"]["uid"])
                self.cache.add_pod(new)
                if self.queue.has_parked:
                    self.queue.move_all(q.ASSIGNED_POD_ADD)
                return
            self.cache.update_pod(new)
            if (old["metadata"].get("labels") != new["metadata"].get("labels")) and self.queue.has_parked:
                self.queue.move_all(q.ASSIGNED_POD_UPDATE)
            return
        if not self._responsible(new) or new["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        self._track_nomination(new)
        changed = old.get("spec") != new.get("spec") or old["metadata"].get("labels") != new["metadata"].get(
            "labels"
        )
        self.queue.update(new, spec_changed=changed)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = _unwrap(obj)
        uid = pod["metadata"].get("uid", "")
        self._unnominate(uid)
        self._conditions.pop(uid, None)
        assigned = _assigned(pod) or self.cache.is_assumed(uid)
        self.cache.remove_pod(pod)
        if assigned:
            self.queue.move_all(q.ASSIGNED_POD_DELETE)
        else:
            self.queue.delete(f"{pod['metadata'].get('namespace', '')}/{pod['metadata'].get('name', '')}")

    def _track_nomination(self, pod: Obj) -> None:
        node = (pod.get("status") or {}).get("nominatedNodeName")
        uid = pod["metadata"]["uid"]
        if node:
            if self._nominated_on.get(uid) != node:
                self._nominate(PodInfo.of(pod), node)
        else:
            self._unnominate(uid)

    def _namespace_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("labels") != new["metadata"].get("labels"):
            self.queue.move_all(q.NAMESPACE_CHANGE)
