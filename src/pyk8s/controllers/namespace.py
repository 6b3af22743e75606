"""Draining deleted namespaces (Kubernetes' namespace controller and its NamespacedResourcesDeleter).

A namespace being deleted (deletionTimestamp set, phase Terminating) that still carries the `kubernetes`
finalizer in `spec.finalizers` has every namespaced resource in it deleted — found through discovery, so
custom resources go too — with a deletecollection per resource. The namespace's status conditions say
how far that got, as Kubernetes writes them (`kubectl describe namespace` shows them). Once nothing is
left, the `kubernetes` finalizer is removed through `namespaces/{name}/finalize` and the API server
removes the namespace. Content still there (graceful pods, finalizers) is checked again shortly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.meta import now_rfc3339
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client
from pyk8s.client.controller import Controller
from pyk8s.controllers.manager import ControllerContext
from pyk8s.controllers.retry import update_fresh

__all__ = ["FINALIZER", "NamespaceController", "discover_namespaced_resources"]

log = logging.getLogger(__name__)


NAMESPACES = require("", "Namespace")
FINALIZER = "kubernetes"
# How soon a namespace whose content is still going is looked at again.
RECHECK_SECONDS = 1.0

Obj = dict[str, Any]


async def discover_namespaced_resources(client: Client) -> tuple[list[ResourceInfo], list[str]]:
    """Every namespaced resource that can be listed and deleted as a collection (preferred version of
    each group), and the discovery failures ("group/version: error"). Without an answer from the server
    the built-in catalog is used."""
    found: list[ResourceInfo] = []
    failures: list[str] = []
    versions: list[tuple[str, str]] = [("", "v1")]
    try:
        groups = await client.request("GET", "/apis")
        for g in groups.get("groups") or []:
            pv = (g.get("preferredVersion") or {}).get("version")
            if pv:
                versions.append((g.get("name", ""), pv))
    except Exception as e:  # any failure is reported in the namespace's conditions
        failures.append(f"/apis: {e}")
    for group, version in versions:
        path = "/api/v1" if not group else f"/apis/{group}/{version}"
        try:
            doc = await client.request("GET", path)
        except Exception as e:
            failures.append(f"{group or 'v1'}/{version}: {e}" if group else f"v1: {e}")
            continue
        for r in doc.get("resources") or []:
            verbs = tuple(r.get("verbs") or ())
            if "/" in r.get("name", "") or not r.get("namespaced") \
                    or "deletecollection" not in verbs or "list" not in verbs:
                continue
            found.append(ResourceInfo(group, version, r.get("kind", ""), r["name"], r.get("singularName", ""),
                                      True, verbs=verbs))
    if not found:
        found = [r for r in catalog.CATALOG
                 if r.namespaced and "deletecollection" in r.verbs and "list" in r.verbs]
    return found, failures


def _resource_name(info: ResourceInfo) -> str:
    # Kubernetes prints schema.GroupResource with a trailing dot for the core group ("pods.").
    return f"{info.plural}.{info.group}"


@dataclass
class _Progress:
    remaining: dict[str, int] = field(default_factory=dict)  # resource → objects left
    finalizers: dict[str, int] = field(default_factory=dict)  # finalizer → objects carrying it
    failures: list[str] = field(default_factory=list)


def _condition(type_: str, true: bool, reason: str, message: str) -> Obj:
    return {"type": type_, "status": "True" if true else "False", "reason": reason, "message": message}


def _conditions(discovery: list[str], p: _Progress) -> list[Obj]:
    """The five deletion conditions, as Kubernetes' namespace_resources_deleter words them."""
    out = [
        _condition("NamespaceDeletionDiscoveryFailure", True, "DiscoveryFailed",
                   f"Discovery failed for some groups, {len(discovery)} failing: {', '.join(discovery)}")
        if discovery else
        _condition("NamespaceDeletionDiscoveryFailure", False, "ResourcesDiscovered",
                   "All resources successfully discovered"),
        _condition("NamespaceDeletionGroupVersionParsingFailure", False, "ParsedGroupVersions",
                   "All legacy kube types successfully parsed"),
        _condition("NamespaceDeletionContentFailure", True, "ContentDeletionFailed",
                   f"Failed to delete all resource types, {len(p.failures)} remaining: "
                   + ", ".join(p.failures))
        if p.failures else
        _condition("NamespaceDeletionContentFailure", False, "ContentDeleted",
                   "All content successfully deleted, may be waiting on finalization"),
    ]
    if p.remaining:
        parts = [f"{name} has {n} resource instances" for name, n in sorted(p.remaining.items())]
        out.append(_condition("NamespaceContentRemaining", True, "SomeResourcesRemain",
                              "Some resources are remaining: " + ", ".join(parts)))
    else:
        out.append(_condition("NamespaceContentRemaining", False, "ContentRemoved",
                              "All content successfully removed"))
    if p.finalizers:
        parts = [f"{name} in {n} resource instances" for name, n in sorted(p.finalizers.items())]
        out.append(_condition("NamespaceFinalizersRemaining", True, "SomeFinalizersRemain",
                              "Some content in the namespace has finalizers remaining: " + ", ".join(parts)))
    else:
        out.append(_condition("NamespaceFinalizersRemaining", False, "ContentHasNoFinalizers",
                              "All content-preserving finalizers finished"))
    return out


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(workers=min(ctx.options.workers, 10))
        self.client = ctx.client
        inf = ctx.informers.informer(NAMESPACES)
        self.namespaces = inf.lister
        inf.add_handler(self._maybe_enqueue, lambda _old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(ns)

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        # The cache may lag behind the finalize call of an earlier round: read the namespace itself.
        try:
            ns = await self.client.get(NAMESPACES, key)
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        resources, discovery_failures = await discover_namespaced_resources(self.client)
        progress = await self._delete_all_content(key, resources)
        await self._set_conditions(ns, _conditions(discovery_failures, progress))
        if progress.remaining or progress.failures or discovery_failures:
            return RECHECK_SECONDS
        await self._finalize(key)
        return None

    async def _delete_all_content(self, namespace: str, resources: list[ResourceInfo]) -> _Progress:
        p = _Progress()
        for info in resources:
            try:
                await self.client.delete_collection(info, namespace)
                left = (await self.client.list(info, namespace)).get("items") or []
            except StatusError as e:
                if e.code in (404, 405):  # gone meanwhile, or not really deletable
                    continue
                p.failures.append(f"{_resource_name(info)}: {e.message}")
                continue
            if left:
                p.remaining[_resource_name(info)] = len(left)
                for obj in left:
                    for f in (obj.get("metadata") or {}).get("finalizers") or []:
                        p.finalizers[f] = p.finalizers.get(f, 0) + 1
        return p

    async def _set_conditions(self, ns: Obj, conditions: list[Obj]) -> None:
        status = ns.setdefault("status", {})
        old = {c.get("type"): c for c in status.get("conditions") or []}
        changed = False
        merged = []
        for c in conditions:
            prev = old.get(c["type"])
            same = prev is not None and all(prev.get(k) == c[k] for k in ("status", "reason", "message"))
            c["lastTransitionTime"] = (prev or {}).get("lastTransitionTime") if same else now_rfc3339()
            changed = changed or not same
            merged.append(c)
        if not changed:
            return
        status["conditions"] = merged
        try:
            await self.client.update_status(NAMESPACES, ns)
        except StatusError as e:
            if e.code not in (404, 409):  # gone, or changed meanwhile: the next round writes them
                raise

    async def _finalize(self, name: str) -> None:
        """Remove our finalizer with a fresh read, retrying on a conflict."""

        def drop_ours(ns: Obj) -> bool:
            spec = ns.setdefault("spec", {})
            finalizers = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
            if len(finalizers) == len(spec.get("finalizers") or []):
                return False
            spec["finalizers"] = finalizers
            return True

        if await update_fresh(self.client, NAMESPACES, name, None, drop_ours,
                              what=f"namespace {name}: finalize", subresource="finalize"):
            log.info("namespace %s: content deleted; finalized", name)
