"""The Deployment controller (Kubernetes' pkg/controller/deployment): a Deployment owns one ReplicaSet per
pod template it has had; the one matching the current template is "new", the rest "old".

A sync claims the ReplicaSets (adopting and releasing as for pods), then either scales (a change of
spec.replicas, or a paused deployment: the sizes change in proportion across ReplicaSets) or rolls out:
RollingUpdate grows the new ReplicaSet within maxSurge and shrinks the old ones within maxUnavailable;
Recreate scales the old ones to zero, waits for their pods to go, then scales the new one up. Status
counts the ReplicaSets' pods and carries the Progressing and Available conditions `kubectl rollout
status` reads. ReplicaSets are updated with the resourceVersion the cache had, so a decision made on
stale data fails with 409 and is made again.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.meta import now_rfc3339
from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, object_key, owner_uid_index
from pyk8s.client.controller import Controller
from pyk8s.client.events import NORMAL, WARNING
from pyk8s.controllers import deployment_util as du
from pyk8s.controllers.controller_ref import claim, controller_of, is_terminating
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.replicaset import PODS, REPLICASETS
from pyk8s.controllers.retry import requeue_on_conflict
from pyk8s.controllers.timestamps import parse_time

__all__ = ["DEPLOYMENTS", "DeploymentController", "new_deployment_controller"]


Obj = dict[str, Any]
meta, spec, status, replicas = du.meta, du.spec, du.status, du.replicas

DEPLOYMENTS = require("apps", "Deployment")


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, ctx: ControllerContext, workers: int | None = None) -> None:
        super().__init__(workers=workers or ctx.options.workers)
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.d_informer = ctx.informers.informer(DEPLOYMENTS)
        self.deployments = self.d_informer.lister
        self.rs_informer = ctx.informers.informer(REPLICASETS)
        self.rs_informer.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.rss = self.rs_informer.lister
        self.pod_informer = ctx.informers.informer(PODS)
        self.pod_informer.add_index(OWNER_UID_INDEX, owner_uid_index)
        self.pods = self.pod_informer.lister
        self.d_informer.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.rs_informer.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pod_informer.add_handler(None, None, self._pod_deleted)

    # --- event handlers ---

    def _owner(self, obj: Obj) -> Obj | None:
        ref = controller_of(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get(ref.get("name", ""), meta(obj).get("namespace"))
        return d if d is not None and meta(d).get("uid") == ref.get("uid") else None

    def _enqueue_matching(self, rs: Obj) -> None:
        labels = meta(rs).get("labels")
        if not labels:
            return
        for d in self.deployments.list(meta(rs).get("namespace")):
            try:
                if selector_from_label_selector(spec(d).get("selector")).matches(labels):
                    self.enqueue(d)
            except StatusError:
                continue

    def _rs_added(self, rs: Obj) -> None:
        d = self._owner(rs)
        if d is not None:
            self.enqueue(d)
        elif controller_of(rs) is None:
            self._enqueue_matching(rs)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            d = self._owner(old)
            if d is not None:
                self.enqueue(d)
        d = self._owner(new)
        if d is not None:
            self.enqueue(d)
        elif new_ref is None and (meta(old).get("labels") != meta(new).get("labels") or old_ref != new_ref):
            self._enqueue_matching(new)

    def _rs_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        rs = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        d = self._owner(rs)
        if d is not None:
            self.enqueue(d)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        # Recreate waits for the old pods to be gone: look again when one goes.
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(ref.get("name", ""), meta(pod).get("namespace"))
        d = self._owner(rs) if rs is not None else None
        if d is not None and not du.is_rolling(d):
            self.enqueue(d)

    # --- sync ---

    async def reconcile(self, key: str) -> float | None:
        return await requeue_on_conflict(self.name, key, self._sync_key(key))

    async def _sync_key(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        cached = self.deployments.get(name, ns)
        if cached is None:
            return None
        d = copy.deepcopy(cached)
        d.setdefault("kind", "Deployment")
        d.setdefault("apiVersion", "apps/v1")
        selector = selector_from_label_selector(spec(d).get("selector"))
        if selector.empty:
            self.recorder.record(d, WARNING, "SelectingAll",
                                 "This deployment is selecting all pods. A non-empty selector is required.")
            if int(status(d).get("observedGeneration") or 0) < int(meta(d).get("generation") or 0):
                await self._write_status(d, {**status(d), "observedGeneration": meta(d).get("generation")})
            return None

        candidates = {object_key(rs): rs for rs in self.rss.by_index(OWNER_UID_INDEX, meta(d).get("uid", ""))}
        for rs in self.rss.list(ns, selector):
            candidates.setdefault(object_key(rs), rs)
        rs_list = await claim(self.client, REPLICASETS, d, "apps/v1", "Deployment", selector,
                              list(candidates.values()), lambda rs: True, lambda: self._can_adopt(d))
        rs_list = [copy.deepcopy(rs) for rs in rs_list]
        for rs in rs_list:
            rs.setdefault("kind", "ReplicaSet")
            rs.setdefault("apiVersion", "apps/v1")

        if is_terminating(d):
            new_rs, old_rss = await self._all_rss(d, rs_list, create=False)
            return await self._sync_status(d, [*old_rss, new_rs], new_rs)

        await self._check_paused(d)
        if spec(d).get("paused"):
            return await self._sync_scaling(d, rs_list)
        if await self._is_scaling_event(d, rs_list):
            return await self._sync_scaling(d, rs_list)
        if du.is_rolling(d):
            return await self._rollout_rolling(d, rs_list)
        return await self._rollout_recreate(d, rs_list)

    async def _can_adopt(self, d: Obj) -> bool:
        try:
            fresh = await self.client.get(DEPLOYMENTS, meta(d)["name"], meta(d).get("namespace"))
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return bool(meta(fresh).get("uid") == meta(d).get("uid")) and not is_terminating(fresh)

    async def _check_paused(self, d: Obj) -> None:
        """Progressing Unknown while paused (so no deadline is counted), DeploymentResumed after."""
        if not du.has_progress_deadline(d):
            return
        cond = du.get_condition(status(d), "Progressing")
        paused = bool(spec(d).get("paused"))
        if paused and (cond is None or cond.get("reason") != du.PAUSED):
            new = du.new_condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused")
        elif not paused and cond is not None and cond.get("reason") == du.PAUSED:
            new = du.new_condition("Progressing", "Unknown", du.RESUMED, "Deployment is resumed")
        else:
            return
        st = copy.deepcopy(status(d))
        du.set_condition(st, new)
        await self._write_status(d, st)

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        """True when an active ReplicaSet was sized for a different spec.replicas (desired-replicas)."""
        new_rs, old_rss = await self._all_rss(d, rs_list, create=False)
        for rs in du.active([new_rs, *old_rss]):
            desired = (meta(rs).get("annotations") or {}).get(du.DESIRED_REPLICAS)
            if desired is not None and desired.isdigit() and int(desired) != replicas(d):
                return True
        return False

    # --- finding and creating the new ReplicaSet ---

    def _find_new(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        matching = sorted((rs for rs in rs_list if du.equal_ignore_hash(spec(rs).get("template"),
                                                                           spec(d).get("template"))),
                          key=du.created_at)
        return matching[0] if matching else None

    async def _all_rss(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        new_rs = self._find_new(d, rs_list)
        old_rss = [rs for rs in rs_list if rs is not new_rs]
        new_rs = await self._new_rs(d, rs_list, new_rs, old_rss, create)
        return new_rs, old_rss

    async def _new_rs(self, d: Obj, rs_list: list[Obj], existing: Obj | None, old_rss: list[Obj],
                      create: bool) -> Obj | None:
        new_revision = du.max_revision(old_rss) + 1
        if existing is not None:
            rs = copy.deepcopy(existing)
            min_ready = int(spec(d).get("minReadySeconds") or 0)
            min_ready_changed = int(spec(rs).get("minReadySeconds") or 0) != min_ready
            if min_ready_changed:
                rs["spec"]["minReadySeconds"] = min_ready
            if self._set_new_rs_annotations(d, rs, new_revision, exists=True) or min_ready_changed:
                rs = await self.client.update(REPLICASETS, rs)
                existing.clear()
                existing.update(rs)
                rs = existing
            st = copy.deepcopy(status(d))
            needs = await self._set_deployment_revision(d, str(du.revision(rs)))
            if du.has_progress_deadline(d) and du.get_condition(st, "Progressing") is None:
                du.set_condition(st, du.new_condition("Progressing", "True", du.FOUND_NEW_RS,
                                                      f'Found new replica set "{meta(rs)["name"]}"'))
                needs = True
            if needs:
                await self._write_status(d, st)
            return rs
        if not create:
            return None

        collisions = status(d).get("collisionCount")
        template = copy.deepcopy(spec(d).get("template") or {})
        pod_hash = du.compute_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[du.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec(d).get("selector") or {})
        selector.setdefault("matchLabels", {})[du.HASH_LABEL] = pod_hash
        name = f"{meta(d)['name']}-{pod_hash}"
        new: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta(d).get("namespace"),
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": meta(d)["name"], "uid": meta(d)["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"replicas": 0, "minReadySeconds": int(spec(d).get("minReadySeconds") or 0),
                     "selector": selector, "template": template},
        }
        all_rss = [*old_rss]
        size = du.new_rs_replicas(d, all_rss, None)
        new["spec"]["replicas"] = size
        self._set_new_rs_annotations(d, new, new_revision, exists=False)
        try:
            created = await self.client.create(REPLICASETS, new, meta(d).get("namespace"))
        except StatusError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                return await self._collision(d, name)
            if du.has_progress_deadline(d):
                st = copy.deepcopy(status(d))
                msg = f'Failed to create new replica set "{name}": {e.message}'
                du.set_condition(st, du.new_condition("Progressing", "False", du.FAILED_CREATE, msg))
                await self._write_status(d, st)
            self.recorder.record(d, WARNING, du.FAILED_CREATE, f'Failed to create new replica set "{name}": '
                                 f"{e.message}")
            raise
        created.setdefault("kind", "ReplicaSet")
        created.setdefault("apiVersion", "apps/v1")
        if size > 0:
            self.recorder.record(d, NORMAL, "ScalingReplicaSet",
                                 f"Scaled up replica set {name} to {size}")
        await self._set_deployment_revision(d, str(new_revision))
        st = copy.deepcopy(status(d))
        if du.has_progress_deadline(d):
            du.set_condition(st, du.new_condition("Progressing", "True", du.NEW_RS_CREATED,
                                                  f'Created new replica set "{name}"'))
        await self._write_status(d, st)
        return created

    async def _collision(self, d: Obj, name: str) -> Obj | None:
        """The name is taken: the same template (a stale cache) is ours; otherwise bump collisionCount so
        the next hash differs."""
        existing = await self.client.get(REPLICASETS, name, meta(d).get("namespace"))
        ref = controller_of(existing)
        if (ref is not None and ref.get("uid") == meta(d).get("uid")
                and du.equal_ignore_hash(spec(existing).get("template"), spec(d).get("template"))):
            existing.setdefault("kind", "ReplicaSet")
            existing.setdefault("apiVersion", "apps/v1")
            return existing
        st = copy.deepcopy(status(d))
        st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
        await self._write_status(d, st)
        raise RuntimeError(f"hash collision for replica set {name}; "
                           f"collisionCount now {st['collisionCount']}")

    def _set_new_rs_annotations(self, d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
        annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
        before = dict(annotations)
        for k, v in (meta(d).get("annotations") or {}).items():
            if k not in du.SKIPPED_ANNOTATIONS:
                annotations[k] = v
        if du.revision(rs) < new_revision:
            annotations[du.REVISION] = str(new_revision)
        if not exists:
            annotations[du.DESIRED_REPLICAS] = str(replicas(d))
            annotations[du.MAX_REPLICAS] = str(replicas(d) + du.max_surge(d))
        return bool(annotations != before)

    async def _set_deployment_revision(self, d: Obj, rev: str) -> bool:
        """The deployment carries its new ReplicaSet's revision (`kubectl rollout history` lists them)."""
        if (meta(d).get("annotations") or {}).get(du.REVISION) == rev:
            return False
        updated = await self.client.patch(DEPLOYMENTS, meta(d)["name"],
                                          {"metadata": {"annotations": {du.REVISION: rev}}}, "merge",
                                          meta(d).get("namespace"))
        d["metadata"] = updated["metadata"]
        return False  # the annotation is written; status need not be

    # --- scaling ---

    async def _scale_rs(self, rs: Obj, size: int, d: Obj, operation: str) -> bool:
        size_changes = replicas(rs) != size
        annotations = dict(meta(rs).get("annotations") or {})
        want = {du.DESIRED_REPLICAS: str(replicas(d)), du.MAX_REPLICAS: str(replicas(d) + du.max_surge(d))}
        if not size_changes and all(annotations.get(k) == v for k, v in want.items()):
            return False
        old = replicas(rs)
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = size
        body["metadata"]["annotations"] = {**annotations, **want}
        updated = await self.client.update(REPLICASETS, body)
        rs["metadata"], rs["spec"] = updated["metadata"], updated["spec"]
        if size_changes:
            self.recorder.record(d, NORMAL, "ScalingReplicaSet",
                                 f"Scaled {operation} replica set {meta(rs)['name']} to {size} from {old}")
        return size_changes

    async def _scale_and_record(self, rs: Obj, size: int, d: Obj) -> bool:
        if replicas(rs) == size:
            return False
        return await self._scale_rs(rs, size, d, "up" if replicas(rs) < size else "down")

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """Resize for a new spec.replicas: one active ReplicaSet takes it all; several share it in
        proportion to their sizes, leftovers to the largest."""
        latest = du.find_active_or_latest(new_rs, old_rss)
        if latest is not None:
            if replicas(latest) != replicas(d):
                await self._scale_and_record(latest, replicas(d), d)
            return
        if du.is_saturated(d, new_rs):
            for rs in du.active(old_rss):
                await self._scale_and_record(rs, 0, d)
            return
        if not du.is_rolling(d):
            return
        all_rss = du.active([*old_rss, new_rs])
        allowed = replicas(d) + du.max_surge(d) if replicas(d) > 0 else 0
        to_add = allowed - du.spec_replicas(all_rss)
        operation = ""
        if to_add > 0:  # larger first, newer first among equals
            all_rss.sort(key=lambda rs: du.created_at(rs), reverse=True)
            all_rss.sort(key=lambda rs: -replicas(rs))
            operation = "up"
        elif to_add < 0:  # larger first, older first among equals
            all_rss.sort(key=du.created_at)
            all_rss.sort(key=lambda rs: -replicas(rs))
            operation = "down"
        added = 0
        sizes: dict[str, int] = {}
        for rs in all_rss:
            p = du.proportion(rs, d, to_add, added) if to_add != 0 else 0
            sizes[meta(rs)["name"]] = replicas(rs) + p
            added += p
        for i, rs in enumerate(all_rss):
            n = meta(rs)["name"]
            if i == 0 and to_add != 0:
                sizes[n] = max(0, sizes[n] + to_add - added)
            await self._scale_rs(rs, sizes[n], d, operation)

    async def _sync_scaling(self, d: Obj, rs_list: list[Obj]) -> float | None:
        """Scaling, or a paused deployment: resize, clean up, write status; no rollout."""
        new_rs, old_rss = await self._all_rss(d, rs_list, create=False)
        await self._scale(d, new_rs, old_rss)
        if spec(d).get("paused"):
            await self._cleanup(d, old_rss)
        return await self._sync_status(d, [*old_rss, new_rs], new_rs)

    # --- rollouts ---

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> float | None:
        new_rs, old_rss = await self._all_rss(d, rs_list, create=True)
        assert new_rs is not None
        all_rss = [*old_rss, new_rs]
        if await self._reconcile_new(d, all_rss, new_rs):
            return await self._sync_rollout_status(d, all_rss, new_rs)
        if await self._reconcile_old(d, all_rss, du.active(old_rss), new_rs):
            return await self._sync_rollout_status(d, all_rss, new_rs)
        if du.deployment_complete(d, status(d)):
            await self._cleanup(d, old_rss)
        return await self._sync_rollout_status(d, all_rss, new_rs)

    async def _reconcile_new(self, d: Obj, all_rss: list[Obj], new_rs: Obj) -> bool:
        if replicas(new_rs) == replicas(d):
            return False
        if replicas(new_rs) > replicas(d):
            return await self._scale_and_record(new_rs, replicas(d), d)
        return await self._scale_and_record(new_rs, du.new_rs_replicas(d, all_rss, new_rs), d)

    async def _reconcile_old(self, d: Obj, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj) -> bool:
        if du.spec_replicas(old_rss) == 0:
            return False
        min_available = replicas(d) - du.max_unavailable(d)
        new_unavailable = replicas(new_rs) - int(status(new_rs).get("availableReplicas") or 0)
        max_scaled_down = du.spec_replicas(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # First the old pods that are not available anyway: removing them costs no availability.
        cleaned = 0
        for rs in sorted(old_rss, key=du.created_at):
            if cleaned >= max_scaled_down:
                break
            available = int(status(rs).get("availableReplicas") or 0)
            if replicas(rs) == 0 or available >= replicas(rs):
                continue  # all healthy (status may still count pods of a larger size: never scale up)
            count = min(max_scaled_down - cleaned, replicas(rs) - available)
            await self._scale_and_record(rs, replicas(rs) - count, d)
            cleaned += count
        # Then available ones, as far as minAvailable allows.
        # An old ReplicaSet's status may still count pods above a size it was just given (its controller
        # has not deleted them yet): those will go, so they are not counted as available.
        available_now = sum(min(int(status(rs).get("availableReplicas") or 0), replicas(rs))
                            for rs in [*old_rss, new_rs])
        scaled = 0
        if available_now > min_available:
            total = available_now - min_available
            for rs in sorted(old_rss, key=du.created_at):
                if scaled >= total:
                    break
                if replicas(rs) == 0:
                    continue
                count = min(replicas(rs), total - scaled)
                await self._scale_and_record(rs, replicas(rs) - count, d)
                scaled += count
        return cleaned + scaled > 0

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> float | None:
        new_rs, old_rss = await self._all_rss(d, rs_list, create=False)
        scaled_down = False
        for rs in du.active(old_rss):
            scaled_down = await self._scale_and_record(rs, 0, d) or scaled_down
        if scaled_down or self._old_pods_running(old_rss):
            return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)
        if new_rs is None:
            new_rs, old_rss = await self._all_rss(d, rs_list, create=True)
            assert new_rs is not None
        await self._scale_and_record(new_rs, replicas(d), d)
        if du.deployment_complete(d, status(d)):
            await self._cleanup(d, old_rss)
        return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)

    def _old_pods_running(self, old_rss: list[Obj]) -> bool:
        if du.status_count(old_rss, "replicas") > 0:
            return True
        for rs in old_rss:
            for pod in self.pods.by_index(OWNER_UID_INDEX, meta(rs).get("uid", "")):
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """Delete the oldest empty ReplicaSets beyond revisionHistoryLimit."""
        limit = spec(d).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = sorted((rs for rs in old_rss if not is_terminating(rs)),
                           key=lambda rs: (du.revision(rs), du.created_at(rs)))
        for rs in cleanable[:max(0, len(cleanable) - int(limit))]:
            st = status(rs)
            if (int(st.get("replicas") or 0) != 0 or replicas(rs) != 0
                    or int(meta(rs).get("generation") or 0) > int(st.get("observedGeneration") or 0)):
                continue
            try:
                await self.client.delete(REPLICASETS, meta(rs)["name"], meta(rs).get("namespace"))
            except StatusError as e:
                if e.code != 404:
                    raise

    # --- status ---

    def _calculate_status(self, d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj:
        available = du.status_count(all_rss, "availableReplicas")
        total = du.spec_replicas(all_rss)
        st: Obj = {
            "observedGeneration": meta(d).get("generation"),
            "replicas": du.status_count(all_rss, "replicas"),
            "updatedReplicas": du.status_count([new_rs], "replicas"),
            "readyReplicas": du.status_count(all_rss, "readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        }
        if status(d).get("collisionCount") is not None:
            st["collisionCount"] = status(d)["collisionCount"]
        if status(d).get("conditions"):
            st["conditions"] = copy.deepcopy(status(d)["conditions"])
        if available >= replicas(d) - du.max_unavailable(d):
            du.set_condition(st, du.new_condition("Available", "True", du.MIN_AVAILABLE,
                                                  "Deployment has minimum availability."))
        else:
            du.set_condition(st, du.new_condition("Available", "False", du.MIN_UNAVAILABLE,
                                                  "Deployment does not have minimum availability."))
        return st

    async def _sync_status(self, d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> float | None:
        st = self._calculate_status(d, all_rss, new_rs)
        if _strip(st) != _strip(status(d)):
            await self._write_status(d, st)
        return None

    async def _sync_rollout_status(self, d: Obj, all_rss: Sequence[Obj | None],
                                   new_rs: Obj | None) -> float | None:
        st = self._calculate_status(d, all_rss, new_rs)
        if not du.has_progress_deadline(d):
            du.remove_condition(st, "Progressing")
        current = du.get_condition(status(d), "Progressing")
        complete = (int(st.get("replicas") or 0) == int(st.get("updatedReplicas") or 0)
                    and current is not None and current.get("reason") == du.NEW_RS_AVAILABLE)
        now = datetime.now(UTC)
        rs_name = meta(new_rs).get("name") if new_rs is not None else None
        if du.has_progress_deadline(d) and not complete:
            if du.deployment_complete(d, st):
                msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name
                       else f'Deployment "{meta(d)["name"]}" has successfully progressed.')
                du.set_condition(st, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE, msg))
            elif du.deployment_progressing(d, st):
                msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name
                       else f'Deployment "{meta(d)["name"]}" is progressing.')
                cond = du.new_condition("Progressing", "True", du.RS_UPDATED, msg)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    du.remove_condition(st, "Progressing")
                du.set_condition(st, cond)
            elif du.timed_out(d, st, now):
                msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name
                       else f'Deployment "{meta(d)["name"]}" has timed out progressing.')
                du.set_condition(st, du.new_condition("Progressing", "False", du.TIMED_OUT, msg))
        failures = [c for rs in all_rss if rs is not None
                    for c in status(rs).get("conditions") or [] if c.get("type") == "ReplicaFailure"]
        if failures:
            f = failures[0]
            du.set_condition(st, {"type": "ReplicaFailure", "status": f.get("status"),
                                  "reason": f.get("reason"), "message": f.get("message"),
                                  "lastUpdateTime": now_rfc3339(),
                                  "lastTransitionTime": f.get("lastTransitionTime") or now_rfc3339()})
        else:
            du.remove_condition(st, "ReplicaFailure")
        if _strip(st) != _strip(status(d)):
            await self._write_status(d, st)
            return None
        return self._requeue_stuck(d, st, now)

    def _requeue_stuck(self, d: Obj, st: Obj, now: datetime) -> float | None:
        """Look again when the progress deadline would pass, to mark it exceeded."""
        cond = du.get_condition(status(d), "Progressing")
        if not du.has_progress_deadline(d) or cond is None or du.deployment_complete(d, st):
            return None
        if cond.get("reason") == du.TIMED_OUT:
            return None
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return None
        after = since.timestamp() + int(spec(d).get("progressDeadlineSeconds") or 0) - now.timestamp()
        return max(after, 0.0) + 1.0  # lastUpdateTime has whole seconds: look just after the deadline

    async def _write_status(self, d: Obj, st: Obj) -> None:
        body = {**d, "status": _omit_zeros(st)}
        updated = await self.client.update_status(DEPLOYMENTS, body)
        d["metadata"], d["status"] = updated["metadata"], updated.get("status") or {}


_OMITTED = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas",
            "observedGeneration")


def _omit_zeros(st: Obj) -> Obj:
    """Status fields are `omitempty` in Kubernetes: zeros are not written."""
    return {k: v for k, v in st.items() if not (k in _OMITTED and not v)}


def _strip(st: Obj) -> Obj:
    """Status as compared: zeros omitted, condition timestamps kept (a changed condition is a change)."""
    return _omit_zeros(st)


def new_deployment_controller(ctx: ControllerContext) -> DeploymentController:
    return DeploymentController(ctx)
