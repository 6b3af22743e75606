"""Generic store-backed REST semantics for every resource, as Kubernetes' generic registry store does:
create, get, update (with the status split), patch, delete (graceful, finalizers, propagation) and
deletecollection.

Objects are stored as orjson bytes without `metadata.resourceVersion`; the store's mod_revision is the
resourceVersion, set on read. Writes are compare-and-swap on the revision that was read.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson

from pyk8s.api import errors
from pyk8s.api.apply import server_side_apply, track_update
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.errors import Cause
from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.meta import new_uid, now_rfc3339
from pyk8s.api.patch import APPLY_PATCH, apply_patch
from pyk8s.api.resource import ResourceInfo
from pyk8s.api.validation import validate
from pyk8s.apiserver import admission, codec
from pyk8s.apiserver.interfaces import AdmissionPlugin, AdmissionRequest, Obj, UserInfo
from pyk8s.apiserver.service_alloc import ServiceAllocator
from pyk8s.apiserver.watch_cache import WatchCacheSet, decode
from pyk8s.store.errors import Conflict, KeyExists, KeyNotFound
from pyk8s.store.protocol import KeyValue, Store

# Kinds whose metadata.generation Kubernetes tracks (set to 1 on create, bumped on spec changes).
GENERATION_KINDS = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "PodDisruptionBudget",
        "CustomResourceDefinition",
        "NetworkPolicy",
        "Ingress",
        "PriorityLevelConfiguration",
    }
)
# Kinds whose PUT may create the object (AllowCreateOnUpdate in Kubernetes' strategies).
CREATE_ON_UPDATE = frozenset(
    {
        ("", "services"),
        ("", "endpoints"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("", "limitranges"),
        ("coordination.k8s.io", "leases"),
    }
)
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_TRIES = 8
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_MODIFIED_MSG = "the object has been modified; please apply your changes to the latest version and try again"


class _StaleCopy(Exception):
    """A patch changed nothing of the watch cache's copy, which may lag the store: ask the store."""


def encode_for_store(obj: Obj) -> bytes:
    """The stored form: the object without its resourceVersion (the store's revision is that)."""
    meta = obj["metadata"]
    rv = meta.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            meta["resourceVersion"] = rv


@dataclass
class RequestContext:
    """Per-request options every mutating verb honours."""

    user: UserInfo
    dry_run: bool = False
    field_manager: str = ""
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    applying: bool = False
    field_validation: str = "Ignore"

    def manager(self) -> str:
        """fieldManager, or (as Kubernetes) the user agent's program name up to the first '/'."""
        return self.field_manager or self.user_agent.split("/", 1)[0][:128] or "unknown"


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None


def patched(info: ResourceInfo, original: Obj, patch: Any, patch_type: str) -> Obj:
    return apply_patch(info, original, patch, patch_type)


def _gen_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


def _spec_changed(old: Obj, new: Obj) -> bool:
    keys = (set(old) | set(new)) - {"metadata", "status", "apiVersion", "kind"}
    return any(old.get(k) != new.get(k) for k in keys)


class Registry:
    def __init__(self, store: Store, caches: WatchCacheSet, plugins: Sequence[AdmissionPlugin]) -> None:
        self.store = store
        self.caches = caches
        self.plugins = list(plugins)
        self.services: ServiceAllocator | None = None  # ClusterIPs and NodePorts (create_app sets it)
        self._namespaces: dict[str, tuple[bytes, Obj]] = {}  # lookup_namespace's decoded versions

    # -- reads ---------------------------------------------------------------------------------------

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return decode(await self._get_kv(info, namespace, name))

    async def _get_kv(self, info: ResourceInfo, namespace: str, name: str) -> KeyValue:
        try:
            return await self.store.get(info.storage_key(namespace, name))
        except KeyNotFound:
            raise errors.not_found(info.plural, name, info.group) from None

    async def lookup_namespace(self, name: str) -> Obj | None:
        """The namespace, for the lifecycle check of every namespaced create. A cached namespace is decoded
        once per version (a changed object is new bytes in the cache) and shared: callers only read it."""
        key = f"/registry/core/namespaces/{name}"
        cached = self.caches.caches.get("/registry/core/namespaces/")
        raw = cached.objects.raw.get(key) if cached is not None else None
        if raw is not None:
            seen = self._namespaces.get(key)
            if seen is None or seen[0] is not raw:
                if len(self._namespaces) >= 4096:
                    self._namespaces.clear()
                seen = self._namespaces[key] = (raw, orjson.loads(raw))
            return seen[1]
        try:  # the cache may lag a namespace created a moment ago
            return decode(await self.store.get(key))
        except KeyNotFound:
            return None

    # -- helpers -------------------------------------------------------------------------------------

    def _check_type(
        self, info: ResourceInfo, obj: Obj, kind: str | None = None, api_version: str | None = None
    ) -> None:
        kind = kind or info.kind
        api_version = api_version or info.api_version
        if obj.get("apiVersion") not in (None, "", api_version):
            raise errors.bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the "
                f"expected API version ({api_version})"
            )
        if obj.get("kind") not in (None, "", kind):
            raise errors.bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind ({kind})"
            )
        obj["apiVersion"] = api_version
        obj["kind"] = kind
        if not isinstance(obj.get("metadata"), dict):
            if obj.get("metadata") is not None:
                raise errors.bad_request("metadata must be an object")
            obj["metadata"] = {}

    def _check_namespace(self, info: ResourceInfo, obj: Obj, namespace: str) -> None:
        meta = obj["metadata"]
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    def _admission(
        self,
        op: str,
        info: ResourceInfo,
        sub: str,
        ns: str,
        name: str,
        obj: Obj | None,
        old: Obj | None,
        ctx: RequestContext,
    ) -> AdmissionRequest:
        return AdmissionRequest(op, info, sub, ns, name, obj, old, ctx.user, ctx.dry_run)

    def _validate(self, info: ResourceInfo, obj: Obj, old: Obj | None, subresource: str = "") -> None:
        causes = validate(info, obj, old, subresource)
        if causes:
            raise errors.invalid(info.kind, obj["metadata"].get("name", ""), causes, info.group)

    def _track(
        self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: RequestContext, subresource: str = ""
    ) -> None:
        if not ctx.applying:
            track_update(info, old, obj, ctx.manager(), subresource=subresource)

    def _allocation(self, info: ResourceInfo, obj: Obj, old: Obj | None, dry_run: bool) -> Any:
        """Around a service write: take its addresses and ports, give them back if the write fails."""
        if self.services is None or info.group != "" or info.plural != "services":
            return nullcontext()
        return self.services.transaction(obj, old, dry_run)

    def _released(self, info: ResourceInfo, obj: Obj) -> None:
        if self.services is not None and info.group == "" and info.plural == "services":
            self.services.release(obj)

    # -- create --------------------------------------------------------------------------------------

    async def create(self, info: ResourceInfo, namespace: str, obj: Obj, ctx: RequestContext) -> Obj:
        self._check_type(info, obj)
        self._check_namespace(info, obj, namespace)
        meta = obj["metadata"]
        meta.pop("resourceVersion", None)
        meta.pop("selfLink", None)
        for k in _SYSTEM_META:
            meta.pop(k, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        if info.kind in GENERATION_KINDS:
            meta["generation"] = 1
        generate = not meta.get("name") and bool(meta.get("generateName"))
        if generate:
            meta["name"] = _gen_name(meta["generateName"])
        name = meta.get("name", "")
        if not name:
            raise errors.invalid(
                info.kind,
                "",
                [Cause("FieldValueRequired", "name or generateName is required", "metadata.name")],
                info.group,
            )
        await admission.namespace_lifecycle("CREATE", info, namespace, name, self.lookup_namespace)
        # As Kubernetes' create handler: the field manager records the decoded, defaulted request, before
        # mutating admission and the strategy. What they add (a pod's service-account volume, its
        # Pending status) belongs to no manager, and is not defaulted again: admission plugins write
        # complete values.
        apply_defaults(info, obj)
        self._track(info, obj, None, ctx)
        req = self._admission("CREATE", info, "", namespace, name, obj, None, ctx)
        await admission.run_mutating(self.plugins, req)
        _prepare_for_create(info, obj)
        if info.kind == "CertificateSigningRequest":
            _set_requestor(obj, ctx.user)
        with self._allocation(info, obj, None, ctx.dry_run):
            self._validate(info, obj, None)
            await admission.run_validating(self.plugins, req)
            if ctx.dry_run:
                return obj
            for _ in range(_GENERATE_TRIES):
                try:
                    key = info.storage_key(namespace, meta["name"])
                    kv = await self.store.create(key, encode_for_store(obj))
                except KeyExists:
                    if not generate:
                        raise errors.already_exists(info.plural, meta["name"], info.group) from None
                    meta["name"] = _gen_name(meta["generateName"])
                    continue
                meta["resourceVersion"] = str(kv.mod_revision)
                return obj
        raise errors.StatusError(
            500,
            "AlreadyExists",
            f'{info.group_resource} "{meta["name"]}" already exists, and no unused name could be generated',
        )

    # -- update and patch ----------------------------------------------------------------------------

    async def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        body: Obj,
        ctx: RequestContext,
        subresource: str = "",
    ) -> tuple[Obj, bool]:
        """PUT. Returns (object, created)."""
        self._check_type(info, body)
        self._check_namespace(info, body, namespace)
        if body["metadata"].get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({body['metadata']['name']}) does not match the "
                f"name on the URL ({name})"
            )
        body["metadata"]["name"] = name
        precondition = body["metadata"].get("resourceVersion") or None
        attempt = body
        while True:
            try:
                kv = await self.store.get(info.storage_key(namespace, name))
            except KeyNotFound:
                if subresource or (info.group, info.plural) not in CREATE_ON_UPDATE:
                    raise errors.not_found(info.plural, name, info.group) from None
                if precondition:
                    raise errors.not_found(info.plural, name, info.group) from None
                try:
                    return await self.create(info, namespace, attempt, ctx), True
                except errors.StatusError as e:
                    if e.reason == "AlreadyExists":
                        attempt = json_copy(body)
                        continue
                    raise
            try:
                return await self._write_update(info, kv, attempt, ctx, subresource, precondition), False
            except Conflict:
                if precondition:
                    raise errors.conflict(info.plural, name, info.group, _MODIFIED_MSG) from None
                attempt = json_copy(body)

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        ctx: RequestContext,
        force: bool = False,
        subresource: str = "",
    ) -> tuple[Obj, bool]:
        """PATCH. Returns (object, created): only server-side apply creates.

        As Kubernetes' GuaranteedUpdate, the first attempt starts from the watch cache's copy (no store
        read). That copy may lag the store, which is safe because the write is a compare-and-swap on the
        copy's revision; when an attempt from a copy fails before it wrote (a conflict, a precondition,
        the patch itself, validation, admission, the object gone, or a patch that changes nothing, which
        must not answer with an old object), it is tried again from the store, and only what fails there
        is the answer."""
        if patch_type == APPLY_PATCH and not ctx.field_manager:
            raise errors.bad_request("PATCH, command: apply, requires fieldManager to be set")
        key = info.storage_key(namespace, name)
        warned = len(ctx.warnings)
        fresh = ctx.dry_run  # a dry run is checked by no compare-and-swap: it reads the store
        while True:
            del ctx.warnings[warned:]  # an attempt that is retried leaves no warnings behind
            cached = None if fresh else self._cached(info, key)
            if cached is not None:
                kv, old = cached
            else:
                fresh = True
                try:
                    kv = await self.store.get(key)
                except KeyNotFound:
                    if patch_type != APPLY_PATCH or subresource:
                        raise errors.not_found(info.plural, name, info.group) from None
                    obj = self._applied(info, None, patch, ctx, force)
                    applied_name = (obj.get("metadata") or {}).get("name")
                    if applied_name and applied_name != name:
                        raise errors.bad_request(
                            f"the name of the object ({applied_name}) does not match the name on the URL "
                            f"({name})"
                        ) from None
                    obj.setdefault("metadata", {})["name"] = name
                    try:
                        return await self.create(info, namespace, obj, ctx), True
                    except errors.StatusError as e:
                        if e.reason == "AlreadyExists":
                            continue
                        raise
                old = decode(kv)
            precondition = None
            try:
                if patch_type == APPLY_PATCH:
                    new = self._applied(info, old, patch, ctx, force, subresource)
                else:
                    new = patched(info, old, patch, patch_type)
                    if not isinstance(new, dict):
                        raise errors.bad_request("the patch did not produce an object")
                    pmeta = patch.get("metadata") if isinstance(patch, dict) else None
                    precondition = pmeta.get("resourceVersion") if isinstance(pmeta, dict) else None
                # fieldValidation applies to what the patch produced (Strict: 400, Warn: a warning).
                ctx.warnings.extend(codec.check_unknown_fields(info, new, ctx.field_validation))
                if not isinstance(new.get("metadata"), dict):
                    new["metadata"] = {}
                new["metadata"]["name"] = name
                new["metadata"]["resourceVersion"] = precondition or old["metadata"]["resourceVersion"]
                written = await self._write_update(info, kv, new, ctx, subresource, precondition, old, fresh)
                return written, False
            except Conflict:
                if precondition and fresh:
                    raise errors.conflict(info.plural, name, info.group, _MODIFIED_MSG) from None
                fresh = True
            except (errors.StatusError, KeyNotFound, _StaleCopy):  # raised before anything was written
                if fresh:
                    raise
                fresh = True  # the cached copy may have been stale: try again from the store

    def _cached(self, info: ResourceInfo, key: str) -> tuple[KeyValue, Obj] | None:
        """The watch cache's copy of an object, as the store's KeyValue (stored form, revision; the
        create revision is not known and not used by an update) and decoded; None when not cached."""
        cache = self.caches.caches.get(info.storage_prefix())
        raw = cache.objects.raw.get(key) if cache is not None else None
        if raw is None:
            return None
        old: Obj = orjson.loads(raw)
        return KeyValue(key, encode_for_store(old), int(old["metadata"]["resourceVersion"]), 0), old

    def _applied(
        self,
        info: ResourceInfo,
        old: Obj | None,
        patch: Any,
        ctx: RequestContext,
        force: bool,
        subresource: str = "",
    ) -> Obj:
        ctx.applying = True  # server_side_apply records managedFields itself
        return server_side_apply(info, old, patch, ctx.field_manager, force, subresource)

    async def _write_update(
        self,
        info: ResourceInfo,
        kv: KeyValue,
        new: Obj,
        ctx: RequestContext,
        subresource: str,
        precondition: str | None,
        old: Obj | None = None,
        fresh: bool = True,
    ) -> Obj:
        """Turn `new` into the stored successor of `kv` and write it. Raises store Conflict to retry.
        `fresh`: `kv` was read from the store, not the watch cache (see `patch`)."""
        old = old if old is not None else decode(kv)
        name = old["metadata"]["name"]
        namespace = old["metadata"].get("namespace", "")
        if precondition and precondition != str(kv.mod_revision):
            raise errors.conflict(info.plural, name, info.group, _MODIFIED_MSG)
        self._check_type(info, new)
        new = _prepare_for_update(info, old, new, subresource)
        req = self._admission("UPDATE", info, subresource, namespace, name, new, old, ctx)
        await admission.run_mutating(self.plugins, req)
        apply_defaults(info, new, subresource)
        deleting = _should_delete_during_update(info, new)
        with nullcontext() if deleting else self._allocation(info, new, old, ctx.dry_run):
            self._validate(info, new, old, subresource)
            await admission.run_validating(self.plugins, req)
            self._track(info, new, old, ctx, subresource)
            if deleting:
                if ctx.dry_run:
                    return new
                deleted = await self.store.delete(kv.key, expected_revision=kv.mod_revision)
                self._released(info, old)
                new["metadata"]["resourceVersion"] = str(deleted.mod_revision)
                return new
            data = encode_for_store(new)
            if data == kv.value:  # nothing changed: no write, no new resourceVersion (as Kubernetes)
                if not fresh:
                    raise _StaleCopy(kv.key)  # unchanged from a copy that may be old: `patch` reads the store
                return old
            if ctx.dry_run:
                return new
            written = await self.store.update(kv.key, data, kv.mod_revision)
            new["metadata"]["resourceVersion"] = str(written.mod_revision)
            return new

    # -- delete --------------------------------------------------------------------------------------

    async def delete(
        self, info: ResourceInfo, namespace: str, name: str, opts: DeleteOptions, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        """Returns (object, deleted now). An object that has to wait (finalizers, graceful pod deletion,
        a namespace being drained) comes back with its deletionTimestamp set."""
        await admission.namespace_lifecycle("DELETE", info, namespace, name, self.lookup_namespace)
        while True:
            kv = await self._get_kv(info, namespace, name)
            obj = decode(kv)
            meta = obj["metadata"]
            if opts.precondition_uid is not None and opts.precondition_uid != meta.get("uid"):
                raise errors.conflict(
                    info.plural,
                    name,
                    info.group,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, "
                    f"UID in object meta: {meta.get('uid', '')}",
                )
            if opts.precondition_rv is not None and opts.precondition_rv != meta["resourceVersion"]:
                raise errors.conflict(
                    info.plural,
                    name,
                    info.group,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{opts.precondition_rv}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}",
                )
            req = self._admission("DELETE", info, "", namespace, name, None, obj, ctx)
            await admission.run_validating(self.plugins, req)
            new = json_copy(obj)
            graceful = _begin_deletion(info, new, opts)
            try:
                if not graceful:
                    if ctx.dry_run:
                        return obj, True
                    deleted = await self.store.delete(kv.key, expected_revision=kv.mod_revision)
                    self._released(info, obj)
                    meta["resourceVersion"] = str(deleted.mod_revision)
                    return obj, True
                if ctx.dry_run:
                    return new, False
                data = encode_for_store(new)
                if data == kv.value:
                    return obj, False
                written = await self.store.update(kv.key, data, kv.mod_revision)
                new["metadata"]["resourceVersion"] = str(written.mod_revision)
                return new, False
            except KeyNotFound:
                raise errors.not_found(info.plural, name, info.group) from None
            except Conflict:
                continue

    async def delete_collection(
        self, info: ResourceInfo, namespace: str, matches: Any, opts: DeleteOptions, ctx: RequestContext
    ) -> list[Obj]:
        result = await self.store.list(info.storage_prefix(namespace or None))
        out = []
        for kv in result.items:
            obj = decode(kv)
            if matches is not None and not matches(obj):
                continue
            try:
                deleted, _ = await self.delete(
                    info, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], opts, ctx
                )
            except errors.StatusError as e:
                if e.code == 404:
                    continue
                raise
            out.append(deleted)
        return out


def _prepare_for_create(info: ResourceInfo, obj: Obj) -> None:
    """What Kubernetes' strategies reset on create: status set by the system, not the client."""
    kind = info.kind
    if info.group == "" and kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        if "kubernetes" not in (spec.get("finalizers") or []):
            spec["finalizers"] = [*(spec.get("finalizers") or []), "kubernetes"]
    elif info.group == "" and kind == "Pod":
        obj["status"] = {"phase": "Pending"}
    elif info.has_status and kind not in ("Node", "PersistentVolume", "PersistentVolumeClaim", "Service"):
        obj.pop("status", None)


def _set_requestor(csr: Obj, user: UserInfo) -> None:
    """A CSR names who asked for it, from the request's credentials, never from the body."""
    spec = csr.setdefault("spec", {})
    for k in ("username", "uid", "groups", "extra"):
        spec.pop(k, None)
    spec["username"] = user.name
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}


def _approval(old: Obj, new: Obj) -> Obj:
    """certificatesigningrequests/approval changes only the conditions; new ones get timestamps."""
    status = dict(old.get("status") or {})
    conditions = [dict(c) for c in (new.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    for c in conditions:
        c.setdefault("lastUpdateTime", now_rfc3339())
        c.setdefault("lastTransitionTime", c["lastUpdateTime"])
    status["conditions"] = conditions
    return status


def _prepare_for_update(info: ResourceInfo, old: Obj, new: Obj, subresource: str) -> Obj:
    """Carry over what a client may not change on this endpoint."""
    old_meta = old["metadata"]
    if subresource == "approval":
        out = json_copy(old)
        rv = new["metadata"].get("resourceVersion", old_meta["resourceVersion"])
        out["metadata"]["resourceVersion"] = rv
        out["status"] = _approval(old, new)
        return out
    if subresource in ("status", "finalize"):
        out = json_copy(old)
        out["metadata"]["resourceVersion"] = new["metadata"].get(
            "resourceVersion", old_meta["resourceVersion"]
        )
        if subresource == "status":
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
        else:
            out.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get("finalizers") or []
        return out
    meta = new["metadata"]
    for k in _SYSTEM_META:
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    meta.pop("selfLink", None)
    if old_meta.get("namespace"):
        meta["namespace"] = old_meta["namespace"]
    if info.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if info.group == "" and info.kind == "Namespace":
        new.setdefault("spec", {})["finalizers"] = (old.get("spec") or {}).get("finalizers") or []
    if "generation" in old_meta and _spec_changed(old, new):
        meta["generation"] = old_meta["generation"] + 1
    return new


def _should_delete_during_update(info: ResourceInfo, obj: Obj) -> bool:
    """An object being deleted goes once its last finalizer is removed (Kubernetes' generic store)."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if meta.get("deletionGracePeriodSeconds") not in (None, 0):
        return False
    if info.group == "" and info.kind == "Namespace":
        return not (obj.get("spec") or {}).get("finalizers")
    return True


def _begin_deletion(info: ResourceInfo, obj: Obj, opts: DeleteOptions) -> bool:
    """Mark `obj` for deletion in place; True when it must stay (graceful or finalizers), False when it
    can be removed now."""
    meta = obj["metadata"]
    finalizers: list[str] = list(meta.get("finalizers") or [])
    policy = opts.propagation_policy
    if policy is None and opts.orphan_dependents is not None:
        policy = "Orphan" if opts.orphan_dependents else "Background"
    if policy == "Orphan":
        finalizers = [f for f in finalizers if f != "foregroundDeletion"]
        if "orphan" not in finalizers:
            finalizers.append("orphan")
    elif policy == "Foreground":
        finalizers = [f for f in finalizers if f != "orphan"]
        if "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
    elif policy == "Background":
        finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)

    grace = 0
    if info.group == "" and info.kind == "Pod":
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if spec.get("nodeName") and phase not in ("Succeeded", "Failed"):
            grace = (
                opts.grace_period_seconds
                if opts.grace_period_seconds is not None
                else int(spec.get("terminationGracePeriodSeconds", 30))
            )
            grace = max(grace, 0)
    is_namespace = info.group == "" and info.kind == "Namespace"
    ns_finalizers = bool((obj.get("spec") or {}).get("finalizers")) if is_namespace else False
    if not finalizers and grace == 0 and not ns_finalizers:
        return False
    if grace > 0:
        previous = meta.get("deletionGracePeriodSeconds")
        if previous is None or grace < previous:
            meta["deletionTimestamp"] = now_rfc3339(grace)
            meta["deletionGracePeriodSeconds"] = grace
    else:
        meta.setdefault("deletionTimestamp", now_rfc3339())
        meta["deletionGracePeriodSeconds"] = 0
    if is_namespace:
        obj.setdefault("status", {})["phase"] = "Terminating"
    return True
