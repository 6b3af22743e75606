"""ControllerRevisions (apps/v1), as Kubernetes' pkg/controller/history: the immutable snapshots of a
DaemonSet's or StatefulSet's pod template that rolling updates and `kubectl rollout undo` work from.

A revision is named `<owner>-<hash>`, the hash being FNV-32a of its data (plus the owner's
`collisionCount` when two templates collide), written with Kubernetes' safe alphabet so names look as
they do there. Revisions carry a `revision` number; the owner's `revisionHistoryLimit` bounds how many
unused ones are kept.

Also the owner-reference helpers the workload controllers share.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import orjson

from pyk8s.api.catalog import require
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import Selector
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.cache import OWNER_UID_INDEX, Lister
from pyk8s.client.client import Client, Obj
from pyk8s.controllers.controller_ref import claim

__all__ = [
    "CONTROLLER_REVISIONS",
    "CONTROLLER_REVISION_HASH_LABEL",
    "REVISION_HASH_LABEL",
    "controller_of",
    "controller_ref",
    "create_revision",
    "equal_revision",
    "hash_revision",
    "new_revision",
    "next_revision",
    "owned_revisions",
    "sort_revisions",
    "template_patch",
    "truncate_history",
    "update_revision_number",
]

CONTROLLER_REVISIONS = require("apps", "ControllerRevision")

# On pods (apps.ControllerRevisionHashLabelKey) and, for DaemonSets, on revisions.
CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
# On a StatefulSet's revisions (history.ControllerRevisionHashLabel).
REVISION_HASH_LABEL = "controller.kubernetes.io/hash"

# rand.SafeEncodeString's alphabet: no vowels (no words) and no 0/1/3 (confusable, no "leet" words).
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def controller_ref(owner: Obj, info: ResourceInfo) -> Obj:
    """The ownerReference a controller puts on what it creates (controller and blockOwnerDeletion)."""
    meta = owner["metadata"]
    return {"apiVersion": info.api_version, "kind": info.kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with `controller: true`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


async def claim_pods(client: Client, pods: Lister, pod_info: ResourceInfo, owner: Obj, info: ResourceInfo,
                     selector: Selector, filter_: Callable[[Obj], bool] = lambda _: True) -> list[Obj]:
    """The pods `owner` controls after adopting matching orphans and releasing owned pods its selector
    no longer matches (ClaimPods). `pods` must have the owner-uid index."""
    meta = owner["metadata"]
    uid = meta["uid"]
    owned = [p for p in pods.by_index(OWNER_UID_INDEX, uid) if (controller_of(p) or {}).get("uid") == uid]
    orphans = [p for p in pods.list(meta["namespace"], selector) if controller_of(p) is None]

    async def can_adopt() -> bool:
        """Adopt only for an owner that is, per the API itself, still there (RecheckDeletionTimestamp)."""
        try:
            fresh = await client.get(info, meta["name"], meta["namespace"])
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return fresh["metadata"].get("uid") == uid and not fresh["metadata"].get("deletionTimestamp")

    if not orphans and all(selector.matches(p["metadata"].get("labels")) for p in owned):
        return owned  # nothing to adopt or release: no API calls
    return await claim(client, pod_info, owner, info.api_version, info.kind, selector, owned + orphans,
                       filter_, can_adopt)


def template_patch(owner: Obj) -> Obj:
    """The revision data: a strategic merge patch replacing the pod template (getPatch of both
    controllers), so applying a revision restores the template exactly."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_revision(data: Obj, collision_count: int | None = None) -> str:
    """HashControllerRevision: FNV-32a over the data's JSON (and the collision count's little-endian
    bytes), its decimal digits safe-encoded."""
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        raw += int(collision_count).to_bytes(4, "little")
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in str(_fnv32a(raw)))


def new_revision(owner: Obj, info: ResourceInfo, data: Obj, revision: int, collision_count: int | None,
                 hash_label: str) -> Obj:
    """NewControllerRevision: labelled as the owner's template plus the hash under `hash_label`."""
    labels = dict((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
                  or {})
    digest = hash_revision(data, collision_count)
    labels[hash_label] = digest
    return {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": f"{owner['metadata']['name']}-{digest}",
                     "namespace": owner["metadata"]["namespace"], "labels": labels,
                     "ownerReferences": [controller_ref(owner, info)]},
        "data": data, "revision": revision,
    }


def equal_revision(a: Obj, b: Obj) -> bool:
    """Same data (compared as the hash labels are, then the data itself)."""
    return bool(a.get("data") == b.get("data"))


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """By revision number, then creation time, then name (history.SortControllerRevisions)."""
    def key(r: Obj) -> tuple[int, str, str]:
        meta = r["metadata"]
        return int(r.get("revision") or 0), meta.get("creationTimestamp") or "", meta["name"]
    return sorted(revisions, key=key)


def next_revision(revisions: Iterable[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revisions), default=0) + 1


async def create_revision(client: Client, revision: Obj, owner: Obj, info: ResourceInfo,
                          collision_count: int, hash_label: str) -> tuple[Obj, int]:
    """Create `revision`; on a name taken by different data, bump the collision count and rehash
    (the caller writes the new count to the owner's status). Returns (revision, collision count).
    A name taken by equal data is that revision (made by an earlier, interrupted sync)."""
    while True:
        data = revision["data"]
        rev = new_revision(owner, info, data, int(revision["revision"]), collision_count, hash_label)
        try:
            return await client.create(CONTROLLER_REVISIONS, rev), collision_count
        except StatusError as e:
            if e.code != 409:
                raise
        meta = rev["metadata"]
        existing = await client.get(CONTROLLER_REVISIONS, meta["name"], meta["namespace"])
        ref = controller_of(existing)
        if ref is not None and ref.get("uid") == owner["metadata"]["uid"] and equal_revision(existing, rev):
            return existing, collision_count
        collision_count += 1


async def update_revision_number(client: Client, revision: Obj, number: int) -> Obj:
    """An old revision made current again (a rollback) takes the next number."""
    if int(revision.get("revision") or 0) == number:
        return revision
    updated = copy.deepcopy(revision)
    updated["revision"] = number
    return await client.update(CONTROLLER_REVISIONS, updated)


async def truncate_history(client: Client, revisions: list[Obj], live: set[str], limit: int | None) -> None:
    """Delete the oldest revisions no live pod uses beyond `limit` (revisionHistoryLimit, default 10)."""
    keep = 10 if limit is None else max(0, int(limit))
    unused = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in live]
    for rev in unused[:max(0, len(unused) - keep)]:
        try:
            await client.delete(CONTROLLER_REVISIONS, rev["metadata"]["name"], rev["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:
                raise


def owned_revisions(revisions: Iterable[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    return [r for r in revisions if (controller_of(r) or {}).get("uid") == uid]


async def write_status(client: Client, info: ResourceInfo, obj: Obj, status: Obj, attempts: int = 3) -> Obj:
    """PUT the status subresource; on a conflict (the cache was behind) read the object afresh and put
    the same status again, as Kubernetes' storeDaemonSetStatus and friends do. The status was computed
    from the pods, not from the object's fields that moved, so it is still right."""
    current = obj
    for attempt in range(attempts):
        updated = copy.deepcopy(current)
        updated["status"] = status
        try:
            return await client.update_status(info, updated)
        except StatusError as e:
            if e.code != 409 or attempt == attempts - 1:
                raise
        meta = obj["metadata"]
        current = await client.get(info, meta["name"], meta.get("namespace"))
        if current["metadata"].get("uid") != meta.get("uid"):
            raise StatusError(409, "Conflict", f"{info.kind} {meta['name']} was replaced")
    raise AssertionError("unreachable")
