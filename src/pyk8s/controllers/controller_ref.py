"""Owner references, adoption and release (Kubernetes' controller_ref_manager), shared by the ReplicaSet
and Deployment controllers.

A controller owns the objects whose controller ownerReference carries its uid. It adopts orphans its
selector matches and releases owned objects its selector no longer matches; both are merge patches that
carry the object's resourceVersion, so a concurrent change makes them fail with 409 instead of clobbering
another controller's claim.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.labels import Selector
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.client import Client

Obj = dict[str, Any]

__all__ = ["claim", "controller_of", "is_active_pod", "is_terminating", "owner_reference"]


def meta(obj: Obj) -> dict[str, Any]:
    m: dict[str, Any] = obj.get("metadata") or {}
    return m


def owner_reference(owner: Obj, api_version: str, kind: str) -> Obj:
    m = meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": m.get("name", ""), "uid": m.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with controller: true, if any (metav1.GetControllerOf)."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_active_pod(pod: Obj) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_terminating(pod)


async def _adopt(client: Client, info: ResourceInfo, obj: Obj, ref: Obj) -> Obj:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != ref["uid"]] + [ref]
    patch = {"metadata": {"ownerReferences": refs, "resourceVersion": m.get("resourceVersion"),
                          "uid": m.get("uid")}}
    return await client.patch(info, m["name"], patch, "merge", m.get("namespace"))


async def _release(client: Client, info: ResourceInfo, obj: Obj, owner_uid: str) -> Obj:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != owner_uid]
    patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": m.get("resourceVersion"),
                          "uid": m.get("uid")}}
    return await client.patch(info, m["name"], patch, "merge", m.get("namespace"))


async def claim(client: Client, info: ResourceInfo, owner: Obj, api_version: str, kind: str,
                selector: Selector, candidates: list[Obj], filter_: Callable[[Obj], bool],
                can_adopt: Callable[[], Awaitable[bool]]) -> list[Obj]:
    """ClaimPods / ClaimReplicaSets: the candidates this owner controls after adopting and releasing.
    `filter_` excludes objects that may not be adopted (terminating, finished pods); `can_adopt` checks
    afresh from the API that the owner is still there and not being deleted (asked once, lazily)."""
    uid = meta(owner).get("uid")
    owner_deleting = is_terminating(owner)
    claimed: list[Obj] = []
    adopt_ok: bool | None = None
    for obj in candidates:
        ref = controller_of(obj)
        matches = selector.matches(meta(obj).get("labels"))
        if ref is not None:
            if ref.get("uid") != uid:
                continue  # another controller's
            if matches:
                claimed.append(obj)
                continue
            if owner_deleting:
                continue  # as Kubernetes: an owner being deleted neither adopts nor releases
            try:
                await _release(client, info, obj, str(uid))
            except StatusError as e:
                if e.code not in (404, 409, 422):
                    raise
            continue
        if owner_deleting or not matches or is_terminating(obj) or not filter_(obj):
            continue
        if adopt_ok is None:
            adopt_ok = await can_adopt()
        if not adopt_ok:
            continue
        try:
            adopted = await _adopt(client, info, obj, owner_reference(owner, api_version, kind))
        except StatusError as e:
            if e.code in (404, 409):
                continue  # gone, or changed meanwhile: the next sync sees it afresh
            raise
        claimed.append(adopted)
    return claimed


def deep_copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)
