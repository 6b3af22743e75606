"""The garbage collector: ownerReferences kept true (Kubernetes' garbagecollector, GraphBuilder + GC).

A graph of every watched object by uid — its owners and its dependents — is kept from informers over the
kinds that own or are owned. Work items are uids; `reconcile(uid)` looks at the object in both roles:

- As a dependent (Kubernetes' attemptToDeleteItem): its owners are classified as solid (exist), dangling
  (gone; an owner missing from the graph is looked up with a live GET first, as Kubernetes does, since the
  graph may simply lag) or waiting for dependents (being deleted in the foreground). With a solid owner
  left, references to dangling or waiting owners are removed; with none, the object is deleted —
  in the foreground when a waiting owner made it go and it has dependents of its own, in the background
  otherwise (or as its own finalizers ask).
- As an owner being deleted: with the `orphan` finalizer its dependents lose their references to it, then
  the finalizer is removed; with `foregroundDeletion` its dependents are deleted first, and the finalizer
  is removed once no dependent with `blockOwnerDeletion` is left.

Background deletion needs no finalizer: the API server removes the owner at once, its dependents see a
dangling owner and go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.retry import update_fresh

__all__ = ["GC_RESOURCES", "GarbageCollector"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# The kinds watched: those that own or are owned in a cluster without custom resources.
GC_RESOURCES: tuple[tuple[str, str], ...] = (
    ("", "pods"), ("", "replicationcontrollers"), ("", "podtemplates"), ("", "configmaps"), ("", "secrets"),
    ("", "services"), ("", "endpoints"), ("", "persistentvolumeclaims"), ("", "serviceaccounts"),
    ("", "nodes"), ("apps", "replicasets"), ("apps", "deployments"), ("apps", "statefulsets"),
    ("apps", "daemonsets"), ("apps", "controllerrevisions"), ("batch", "jobs"), ("batch", "cronjobs"),
    ("discovery.k8s.io", "endpointslices"), ("coordination.k8s.io", "leases"),
    ("policy", "poddisruptionbudgets"), ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
)
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
_ABSENT_CACHE = 10000


@dataclass
class _Node:
    info: ResourceInfo
    obj: Obj
    dependents: set[str] = field(default_factory=set)

    @property
    def meta(self) -> Obj:
        meta: Obj = self.obj.get("metadata") or {}
        return meta

    @property
    def owner_uids(self) -> list[str]:
        return [r["uid"] for r in self.meta.get("ownerReferences") or [] if r.get("uid")]

    def deleting(self) -> bool:
        return bool(self.meta.get("deletionTimestamp"))

    def finalizing(self) -> bool:
        """Being deleted with a finalizer this collector owns."""
        return self.deleting() and (self.has_finalizer(ORPHAN) or self.has_finalizer(FOREGROUND))

    def has_finalizer(self, name: str) -> bool:
        return name in (self.meta.get("finalizers") or [])


def _owner_info(ref: Obj) -> ResourceInfo | None:
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return catalog.by_kind(group, str(ref.get("kind") or ""))


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, ctx: ControllerContext, resources: tuple[tuple[str, str], ...] = GC_RESOURCES) -> None:
        super().__init__(workers=max(ctx.options.workers, 5))
        self.client = ctx.client
        self.nodes: dict[str, _Node] = {}
        # Owners a dependent names that are not in the graph yet: uid → dependents waiting for it.
        self._pending: dict[str, set[str]] = {}
        # uids confirmed gone by a live read (uids are never reused, so this stays true).
        self._absent: set[str] = set()
        for group, plural in resources:
            info = catalog.lookup(group, "v1", plural)
            if info is None:
                continue
            inf = ctx.informers.informer(info)
            inf.add_handler(self._on_add(info), self._on_update(info), self._on_delete)

    # --- the graph (GraphBuilder) -------------------------------------------------------------------

    def _link(self, uid: str, node: _Node) -> None:
        for owner in node.owner_uids:
            owner_node = self.nodes.get(owner)
            if owner_node is not None:
                owner_node.dependents.add(uid)
            else:
                self._pending.setdefault(owner, set()).add(uid)

    def _unlink(self, uid: str, owners: list[str]) -> None:
        for owner in owners:
            owner_node = self.nodes.get(owner)
            if owner_node is not None:
                owner_node.dependents.discard(uid)
            waiting = self._pending.get(owner)
            if waiting is not None:
                waiting.discard(uid)
                if not waiting:
                    del self._pending[owner]

    def _on_add(self, info: ResourceInfo) -> Callable[[Obj], None]:
        def handler(obj: Obj) -> None:
            uid = (obj.get("metadata") or {}).get("uid")
            if not uid:
                return
            node = _Node(info, obj, self._pending.pop(uid, set()))
            self.nodes[uid] = node
            self._link(uid, node)
            if node.owner_uids or node.finalizing():
                self.queue.add(uid)
        return handler

    def _on_update(self, info: ResourceInfo) -> Callable[[Obj, Obj], None]:
        def handler(old: Obj, new: Obj) -> None:
            uid = (new.get("metadata") or {}).get("uid")
            if not uid:
                return
            node = self.nodes.get(uid)
            if node is None:
                self._on_add(info)(new)
                return
            before = node.owner_uids
            was_deleting = node.deleting()
            node.obj = new
            after = node.owner_uids
            if before != after:
                self._unlink(uid, [o for o in before if o not in after])
                self._link(uid, node)
                self.queue.add(uid)
            if node.finalizing():
                self.queue.add(uid)
            elif node.deleting() and not was_deleting:
                # A dependent going away may unblock an owner deleting in the foreground.
                for owner in after:
                    self.queue.add(owner)
        return handler

    def _on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            obj = obj.obj
        uid = (obj.get("metadata") or {}).get("uid")
        node = self.nodes.pop(uid, None) if uid else None
        if node is None or uid is None:
            return
        self._absent.add(uid)
        if len(self._absent) > _ABSENT_CACHE:
            self._absent.clear()
        owners = node.owner_uids
        self._unlink(uid, owners)
        for dep in node.dependents:  # their owner is gone now
            self.queue.add(dep)
            self._pending.setdefault(uid, set()).add(dep)
        for owner in owners:  # an owner deleting in the foreground may be waiting for this one
            self.queue.add(owner)

    # --- the collector -------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        if node.deleting() and node.has_finalizer(ORPHAN):
            await self._orphan_dependents(key, node)
            return None
        if node.deleting() and node.has_finalizer(FOREGROUND):
            await self._process_deleting_dependents(key, node)
            # It may itself be the dependent of an owner that went, too.
        elif node.deleting():
            return None
        if node.owner_uids:
            await self._attempt_to_delete(key, node)
        return None

    async def _owner_state(self, ref: Obj, dependent: _Node) -> str:
        """'solid', 'dangling' or 'waiting' for one owner reference."""
        uid = ref.get("uid", "")
        owner = self.nodes.get(uid)
        if owner is not None:
            if owner.deleting() and owner.has_finalizer(FOREGROUND):
                return "waiting"
            return "solid"
        if uid in self._absent:
            return "dangling"
        info = _owner_info(ref)
        if info is None:
            return "solid"  # a kind we cannot look up: never delete on a guess
        namespace = dependent.meta.get("namespace") if info.namespaced else None
        if info.namespaced and not namespace:
            return "dangling"  # a cluster-scoped object cannot be owned by a namespaced one
        try:
            live = await self.client.get(info, ref.get("name", ""), namespace)
        except StatusError as e:
            if e.code != 404:
                raise
            self._absent.add(uid)
            return "dangling"
        live_meta = live.get("metadata") or {}
        if live_meta.get("uid") != uid:
            self._absent.add(uid)
            return "dangling"
        if live_meta.get("deletionTimestamp") and FOREGROUND in (live_meta.get("finalizers") or []):
            return "waiting"
        return "solid"

    async def _attempt_to_delete(self, uid: str, node: _Node) -> None:
        refs: list[Obj] = list(node.meta.get("ownerReferences") or [])
        states = {r.get("uid", ""): await self._owner_state(r, node) for r in refs}
        solid = [u for u, s in states.items() if s == "solid"]
        dangling = [u for u, s in states.items() if s == "dangling"]
        waiting = [u for u, s in states.items() if s == "waiting"]
        if solid:
            if dangling or waiting:
                drop = set(dangling) | set(waiting)
                await self._update_meta(node, uid, lambda meta: _drop_refs(meta, drop))
            return
        if waiting and node.dependents:
            policy = "Foreground"
        elif node.has_finalizer(ORPHAN):
            policy = "Orphan"
        elif node.has_finalizer(FOREGROUND):
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("garbagecollector: deleting %s %s/%s (owners gone: %s), propagation %s", node.info.kind,
                 node.meta.get("namespace", ""), node.meta.get("name"), ", ".join(dangling + waiting), policy)
        try:
            await self.client.delete(node.info, node.meta["name"], node.meta.get("namespace"),
                                     propagation_policy=policy, preconditions={"uid": uid})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def _orphan_dependents(self, uid: str, node: _Node) -> None:
        for dep_uid in list(node.dependents):
            dep = self.nodes.get(dep_uid)
            if dep is not None:
                await self._update_meta(dep, dep_uid, lambda meta: _drop_refs(meta, {uid}))
        await self._update_meta(node, uid, lambda meta: _drop_finalizer(meta, ORPHAN))

    async def _process_deleting_dependents(self, uid: str, node: _Node) -> None:
        blocking = []
        for dep_uid in node.dependents:
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                   for r in dep.meta.get("ownerReferences") or []):
                blocking.append(dep_uid)
            if not dep.deleting():
                self.queue.add(dep_uid)  # it finds this owner waiting and goes (or loses the reference)
        if not blocking:
            await self._update_meta(node, uid, lambda meta: _drop_finalizer(meta, FOREGROUND))

    async def _update_meta(self, node: _Node, uid: str, mutate: Callable[[Obj], bool]) -> None:
        """Read the object fresh, let `mutate` change its metadata (it returns False for no change), write
        it back; a conflict is retried with a fresh read."""
        name, namespace = node.meta.get("name", ""), node.meta.get("namespace")

        def change(obj: Obj) -> bool:
            meta = obj.setdefault("metadata", {})
            return bool(meta.get("uid") == uid and mutate(meta))

        await update_fresh(self.client, node.info, name, namespace, change,
                           what=f"garbagecollector: {node.info.kind} {name}")


def _drop_refs(meta: Obj, uids: set[str]) -> bool:
    refs = meta.get("ownerReferences") or []
    kept = [r for r in refs if r.get("uid") not in uids]
    if len(kept) == len(refs):
        return False
    if kept:
        meta["ownerReferences"] = kept
    else:
        meta.pop("ownerReferences", None)
    return True


def _drop_finalizer(meta: Obj, name: str) -> bool:
    finalizers = meta.get("finalizers") or []
    if name not in finalizers:
        return False
    kept = [f for f in finalizers if f != name]
    if kept:
        meta["finalizers"] = kept
    else:
        meta.pop("finalizers", None)
    return True
