"""The StatefulSet controller (Kubernetes' pkg/controller/statefulset): pods with stable identities.

Pod `<set>-<ordinal>` for every ordinal from `spec.ordinals.start`, labelled
`statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, with hostname and subdomain
(`serviceName`) for stable DNS, and a PersistentVolumeClaim `<claim>-<set>-<ordinal>` per
volumeClaimTemplate (kept when the set goes or scales down, unless persistentVolumeClaimRetentionPolicy
says Delete: then the set, or the removed pod, owns the claim for the garbage collector).

OrderedReady creates in ascending order, each pod waiting for its predecessors to be Running and Ready,
and removes from the highest ordinal one at a time; Parallel does both at once. RollingUpdate replaces
pods from the highest ordinal down to the partition, one at a time, each once the rest are ready;
OnDelete waits for deletions. Templates are ControllerRevisions; pods carry the revision's name in
`controller-revision-hash`. Names are stable, so a create that races a stale cache meets 409 and needs
no expectations (as in Kubernetes). Orphan pods named as members and matched by the selector are
adopted.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, owner_uid_index, split_key
from pyk8s.client.client import Client, Obj
from pyk8s.client.controller import Controller
from pyk8s.client.events import NORMAL, WARNING, EventRecorder
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.controllers import history
from pyk8s.controllers.history import CONTROLLER_REVISION_HASH_LABEL, controller_of, controller_ref
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.replicaset import is_pod_available, is_pod_ready, pod_from_template

__all__ = ["POD_INDEX_LABEL", "POD_NAME_LABEL", "STATEFULSETS", "StatefulSetController", "claim_name",
           "new_statefulset_controller"]

log = logging.getLogger(__name__)


STATEFULSETS = require("apps", "StatefulSet")
PODS = require("", "Pod")
PVCS = require("", "PersistentVolumeClaim")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def claim_name(claim: str, set_name: str, ordinal: int) -> str:
    return f"{claim}-{set_name}-{ordinal}"


def _ordinal(set_name: str, pod: Obj) -> int | None:
    """The ordinal in `<set>-<ordinal>`, None for a name not of this set (getParentNameAndOrdinal)."""
    parent, _, tail = pod["metadata"]["name"].rpartition("-")
    return int(tail) if parent == set_name and tail.isdigit() else None


def _healthy(pod: Obj) -> bool:
    """Running and Ready and not being deleted (isRunningAndReady)."""
    return ((pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod)
            and not pod["metadata"].get("deletionTimestamp"))


def _revision_of(pod: Obj) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)


class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, client: Client, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 2) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.recorder = recorder
        self.sets = informers.informer(STATEFULSETS)
        self.pods = informers.informer(PODS)
        self.revisions = informers.informer(history.CONTROLLER_REVISIONS)
        self.pods.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.revisions.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)

    def _pod_event(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ref = controller_of(pod)
        if ref is not None and ref.get("kind") == "StatefulSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        sts = self.sets.lister.get(name, ns)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return None
        spec = sts.get("spec") or {}
        current, update, old, collisions = await self._revisions(sts)
        selector = selector_from_label_selector(spec.get("selector"))
        claimed = await history.claim_pods(self.client, self.pods.lister, PODS, sts, STATEFULSETS, selector,
                                           lambda p: _ordinal(name, p) is not None)
        pods = [p for p in claimed if _ordinal(name, p) is not None]
        await self._sync(sts, pods, current, update)
        live = {current["metadata"]["name"], update["metadata"]["name"]} | {
            r for p in pods if (r := _revision_of(p))}
        await history.truncate_history(self.client, old, live, spec.get("revisionHistoryLimit"))
        return await self._update_status(sts, pods, current, update, collisions)

    async def _revisions(self, sts: Obj) -> tuple[Obj, Obj, list[Obj], int]:
        """(current, update, others, collision count): update matches the template; current is the
        status' currentRevision while a rollout is under way."""
        candidates = self.revisions.lister.by_index(OWNER_UID_INDEX, sts["metadata"]["uid"])
        owned = history.owned_revisions(candidates, sts)
        data = history.template_patch(sts)
        status = sts.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        equal = [r for r in history.sort_revisions(owned) if r.get("data") == data]
        next_number = history.next_revision(owned)
        if equal:
            update = equal[-1]
            if int(update.get("revision") or 0) < next_number - 1:
                update = await history.update_revision_number(self.client, update, next_number)
        else:
            update, collisions = await history.create_revision(
                self.client, {"data": data, "revision": next_number}, sts, STATEFULSETS, collisions,
                history.REVISION_HASH_LABEL)
        current = next((r for r in owned if r["metadata"]["name"] == status.get("currentRevision")), update)
        others = [r for r in owned if r["metadata"]["name"] not in (current["metadata"]["name"],
                                                                      update["metadata"]["name"])]
        return current, update, others, collisions

    def _new_pod(self, sts: Obj, ordinal: int, revision: Obj) -> Obj:
        """The template of `revision` with the pod's identity and its claims."""
        name = sts["metadata"]["name"]
        template = copy.deepcopy(revision["data"]["spec"]["template"])
        template.pop("$patch", None)
        pod = pod_from_template(template, sts, controller_ref(sts, STATEFULSETS))
        meta = pod["metadata"]
        del meta["generateName"]
        meta["name"] = f"{name}-{ordinal}"
        labels = meta.setdefault("labels", {})
        labels.update({POD_NAME_LABEL: meta["name"], POD_INDEX_LABEL: str(ordinal),
                       CONTROLLER_REVISION_HASH_LABEL: revision["metadata"]["name"]})
        spec = pod["spec"]
        spec["hostname"] = meta["name"]
        if (sts.get("spec") or {}).get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        volumes = [v for v in spec.get("volumes") or []]
        for claim in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            cname = claim["metadata"]["name"]
            volumes = [v for v in volumes if v.get("name") != cname]
            volumes.append({"name": cname, "persistentVolumeClaim": {
                "claimName": claim_name(cname, name, ordinal)}})
        if volumes:
            spec["volumes"] = volumes
        return pod

    async def _create_claims(self, sts: Obj, ordinal: int) -> None:
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        for template in spec.get("volumeClaimTemplates") or []:
            claim = copy.deepcopy(template)
            meta = claim.setdefault("metadata", {})
            cname = claim_name(meta["name"], name, ordinal)
            meta.update(name=cname, namespace=sts["metadata"]["namespace"])
            meta["labels"] = {**(meta.get("labels") or {}), **match_labels}
            if policy.get("whenDeleted") == "Delete":
                meta["ownerReferences"] = [controller_ref(sts, STATEFULSETS)]
            claim.update(apiVersion="v1", kind="PersistentVolumeClaim")
            claim.pop("status", None)
            try:
                await self.client.create(PVCS, claim)
            except StatusError as e:
                if e.code == 409:
                    continue
                self.recorder.record(sts, WARNING, "FailedCreate",
                                     f"create Claim {cname} for Pod {name}-{ordinal} in StatefulSet {name} "
                                     f"failed error: {e.message}")
                raise
            self.recorder.record(sts, NORMAL, "SuccessfulCreate",
                                 f"create Claim {cname} Pod {name}-{ordinal} in StatefulSet {name} success")

    async def _create_pod(self, sts: Obj, ordinal: int, revision: Obj) -> None:
        await self._create_claims(sts, ordinal)
        pod = self._new_pod(sts, ordinal, revision)
        set_name, pod_name = sts["metadata"]["name"], pod["metadata"]["name"]
        try:
            await self.client.create(PODS, pod)
        except StatusError as e:
            if e.code == 409:
                return  # our cache was behind our own create
            self.recorder.record(sts, WARNING, "FailedCreate",
                                 f"create Pod {pod_name} in StatefulSet {set_name} failed error: {e.message}")
            raise
        self.recorder.record(sts, NORMAL, "SuccessfulCreate",
                             f"create Pod {pod_name} in StatefulSet {set_name} successful")

    async def _claims_follow_pod(self, sts: Obj, pod: Obj) -> None:
        """persistentVolumeClaimRetentionPolicy.whenScaled Delete: a pod removed by a scale down owns its
        claims, so the garbage collector deletes them with it."""
        spec = sts.get("spec") or {}
        if (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled") != "Delete":
            return
        ordinal = _ordinal(sts["metadata"]["name"], pod)
        assert ordinal is not None
        meta = pod["metadata"]
        ref = {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"],
               "controller": True, "blockOwnerDeletion": True}
        for template in spec.get("volumeClaimTemplates") or []:
            cname = claim_name(template["metadata"]["name"], sts["metadata"]["name"], ordinal)
            try:
                await self.client.patch(PVCS, cname, {"metadata": {"ownerReferences": [ref]}}, "merge",
                                        sts["metadata"]["namespace"])
            except StatusError as e:
                if e.code != 404:
                    raise

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        set_name, pod_name = sts["metadata"]["name"], pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, pod_name, pod["metadata"]["namespace"],
                                     preconditions={"uid": pod["metadata"]["uid"]})
        except StatusError as e:
            if e.code in (404, 409):
                return
            self.recorder.record(sts, WARNING, "FailedDelete",
                                 f"delete Pod {pod_name} in StatefulSet {set_name} failed error: {e.message}")
            raise
        self.recorder.record(sts, NORMAL, "SuccessfulDelete",
                             f"delete Pod {pod_name} in StatefulSet {set_name} successful")

    async def _sync(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj) -> None:
        """One step of updateStatefulSet: create, replace failed, condemn, roll — waiting where ordered."""
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        replicas = int(spec.get("replicas", 1) or 0)
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        by_ordinal: dict[int, Obj] = {}
        condemned: list[Obj] = []
        for p in pods:
            ordinal = _ordinal(name, p)
            assert ordinal is not None
            if start <= ordinal < start + replicas:
                by_ordinal[ordinal] = p
            else:
                condemned.append(p)
        condemned.sort(key=lambda p: _ordinal(name, p) or 0, reverse=True)

        for ordinal in range(start, start + replicas):
            pod = by_ordinal.get(ordinal)
            if pod is not None and (pod.get("status") or {}).get("phase") == "Failed" and not pod[
                    "metadata"].get("deletionTimestamp"):
                await self._delete_pod(sts, pod)  # recreated below on a later pass
                if ordered:
                    return
                continue
            if pod is None:
                # A pod below the partition keeps the current revision; the rest get the update.
                use = current if rolling and ordinal - start < partition else update
                await self._create_pod(sts, ordinal, use)
                if ordered:
                    return
                continue
            if ordered and not _healthy(pod):
                return  # its successors wait for it

        for victim in condemned:
            if victim["metadata"].get("deletionTimestamp"):
                if ordered:
                    return
                continue
            if ordered and not all(_healthy(p) for p in by_ordinal.values()):
                return
            await self._claims_follow_pod(sts, victim)
            await self._delete_pod(sts, victim)
            if ordered:
                return

        if not rolling or len(by_ordinal) < replicas or condemned:
            return
        if not all(_healthy(p) for p in by_ordinal.values()):
            return  # a rolling update waits for every pod to be ready
        for ordinal in sorted(by_ordinal, reverse=True):
            if ordinal - start < partition:
                break
            target = by_ordinal[ordinal]
            if _revision_of(target) != update["metadata"]["name"]:
                await self._delete_pod(sts, target)
                return

    async def _update_status(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj,
                             collisions: int) -> float | None:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        counted = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in counted if _healthy(p)]
        available = [p for p in ready if is_pod_available(p, min_ready, now)]
        status: Obj = copy.deepcopy(sts.get("status") or {})
        status.update(
            observedGeneration=sts["metadata"].get("generation") or 1, replicas=len(counted),
            readyReplicas=len(ready), availableReplicas=len(available),
            currentReplicas=sum(1 for p in counted if _revision_of(p) == current["metadata"]["name"]),
            updatedReplicas=sum(1 for p in counted if _revision_of(p) == update["metadata"]["name"]),
            currentRevision=current["metadata"]["name"], updateRevision=update["metadata"]["name"])
        if collisions:
            status["collisionCount"] = collisions
        replicas = int(spec.get("replicas", 1) or 0)
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and status["updatedReplicas"] == replicas == status["readyReplicas"] == len(counted):
            status["currentReplicas"] = status["updatedReplicas"]  # the rollout is done
            status["currentRevision"] = status["updateRevision"]
        elif not rolling and status["currentReplicas"] == 0:
            status["currentRevision"] = status["updateRevision"]
            status["currentReplicas"] = status["updatedReplicas"]
        for field in ("readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"):
            if not status[field]:
                del status[field]
        if status != (sts.get("status") or {}):
            await history.write_status(self.client, STATEFULSETS, sts, status)
        waiting = min_ready and len(available) < len(ready)
        return float(min_ready) if waiting else None


def new_statefulset_controller(ctx: ControllerContext) -> StatefulSetController:
    return StatefulSetController(ctx.client, ctx.informers, ctx.recorder("statefulset-controller"),
                                 workers=ctx.options.workers)
