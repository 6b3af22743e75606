"""Subresources with their own shape: scale (autoscaling/v1 Scale), pods/binding, pods/eviction.
(status and namespaces/finalize are updates of the parent; the registry handles them.)"""

from __future__ import annotations

from typing import Any

from pyk8s.api import errors
from pyk8s.api.catalog import lookup
from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.meta import now_rfc3339
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver import admission, disruption
from pyk8s.apiserver.interfaces import AdmissionRequest, Obj
from pyk8s.apiserver.registry import (
    DeleteOptions,
    Registry,
    RequestContext,
    encode_for_store,
    patched,
)
from pyk8s.apiserver.selectors import format_label_selector
from pyk8s.apiserver.watch_cache import decode, resource_prefix
from pyk8s.store.errors import Conflict, KeyNotFound

SCALABLE = frozenset(
    {
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("", "replicationcontrollers"),
    }
)
_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def success_status(code: int = 201) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}


def to_scale(obj: Obj) -> Obj:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    # ReplicationControllers have a plain map selector; the others a LabelSelector.
    scale_meta = {
        k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
    }
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": format_label_selector(spec.get("selector")),
        },
    }


async def get_scale(reg: Registry, info: ResourceInfo, namespace: str, name: str) -> Obj:
    return to_scale(await reg.get(info, namespace, name))


async def update_scale(
    reg: Registry,
    info: ResourceInfo,
    namespace: str,
    name: str,
    ctx: RequestContext,
    scale: Obj | None = None,
    patch: tuple[str, Any] | None = None,
) -> Obj:
    """PUT (a Scale body) or PATCH (a patch of the Scale) of spec.replicas."""
    while True:
        kv = await reg._get_kv(info, namespace, name)
        parent = decode(kv)
        current = to_scale(parent)
        body = patched(info, current, patch[1], patch[0]) if patch is not None else (scale or {})
        if body.get("kind") not in (None, "", "Scale"):
            raise errors.bad_request(
                f"the kind in the data ({body['kind']}) does not match the expected kind (Scale)"
            )
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                name,
                [
                    errors.Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                        "spec.replicas",
                    )
                ],
                "autoscaling",
            )
        precondition = meta.get("resourceVersion") if patch is None else None
        new = json_copy(parent)
        new.setdefault("spec", {})["replicas"] = replicas
        try:
            out = await reg._write_update(info, kv, new, ctx, "", precondition or None, parent)
        except Conflict:
            if precondition:
                raise errors.conflict(info.plural, name, info.group, _MODIFIED) from None
            continue
        return to_scale(out)


async def bind(reg: Registry, namespace: str, name: str, binding: Obj, ctx: RequestContext) -> Obj:
    """pods/binding (and the bindings resource): set spec.nodeName once."""
    pods = lookup("", "v1", "pods")
    assert pods is not None
    meta = binding.get("metadata") or {}
    name = name or meta.get("name", "")
    if meta.get("name") and meta["name"] != name:
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    node = (binding.get("target") or {}).get("name", "")
    if not node:
        raise errors.invalid(
            "Binding", name, [errors.Cause("FieldValueRequired", "Required value", "target.name")]
        )
    await _admit(reg, pods, "binding", namespace, name, binding, ctx)
    key = pods.storage_key(namespace, name)
    # As Kubernetes' Cacher.GuaranteedUpdate: start from the watch cache's copy and let the store's
    # compare-and-swap catch a stale one (a Conflict carries the current value), so a binding is one
    # store write and no read.
    cache = reg.caches.caches.get(resource_prefix(key) or "")
    pod = cache.objects.get(key) if cache is not None else None
    revision = int(pod["metadata"]["resourceVersion"]) if pod is not None else 0
    while True:
        if pod is None:
            kv = await reg._get_kv(pods, namespace, name)
            pod, revision = decode(kv), kv.mod_revision
        new = _bound(pod, name, node, meta)
        if ctx.dry_run:
            return success_status()
        try:
            # The binding writes spec and status at once, which no public endpoint may: write directly.
            await reg.store.update(key, encode_for_store(new), revision)
        except Conflict as e:
            pod, revision = decode(e.current), e.current.mod_revision
            continue
        except KeyNotFound:
            raise errors.not_found("pods", name) from None
        return success_status()


def _bound(pod: Obj, name: str, node: str, binding_meta: Obj) -> Obj:
    """The pod assigned to `node`: a new object sharing the untouched parts of `pod` (which may be the
    watch cache's and must not change)."""
    meta = pod["metadata"]
    uid = binding_meta.get("uid")
    if uid and uid != meta.get("uid"):
        raise errors.conflict(
            "pods/binding", name, "", f"Precondition failed: UID in precondition: {uid}, "
            f"UID in object meta: {meta.get('uid', '')}"
        )
    if meta.get("deletionTimestamp"):
        raise errors.conflict(
            "pods/binding", name, "", f"pod {name} is being deleted, cannot be assigned to a host"
        )
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        raise errors.conflict(
            "pods/binding", name, "", f'pod {name} is already assigned to node "{spec["nodeName"]}"'
        )
    if spec.get("schedulingGates"):
        raise errors.conflict("pods/binding", name, "", f"pod {name} has non-empty .spec.schedulingGates")
    new_meta = dict(meta)
    annotations = binding_meta.get("annotations") or {}
    if annotations:
        new_meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    status = dict(pod.get("status") or {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
    )
    status["conditions"] = conditions
    return {**pod, "metadata": new_meta, "spec": {**spec, "nodeName": node}, "status": status}


async def _admit(
    reg: Registry, info: ResourceInfo, sub: str, namespace: str, name: str, obj: Obj, ctx: RequestContext
) -> None:
    """Admission sees a binding or an eviction as a CREATE of the pod's subresource, with that object."""
    req = AdmissionRequest("CREATE", info, sub, namespace, name, obj, None, ctx.user, ctx.dry_run)
    await admission.run_mutating(reg.plugins, req)
    await admission.run_validating(reg.plugins, req)


async def evict(reg: Registry, namespace: str, name: str, eviction: Obj, ctx: RequestContext) -> Obj:
    """pods/eviction: delete the pod with the eviction's options, if its disruption budget allows."""
    pods = lookup("", "v1", "pods")
    assert pods is not None
    meta = eviction.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    raw = eviction.get("deleteOptions") or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("preconditions") or {}, dict):
        raise errors.bad_request("deleteOptions must be a DeleteOptions object")
    if "All" in (raw.get("dryRun") or []):
        ctx.dry_run = True
    await _admit(reg, pods, "eviction", namespace, name, eviction, ctx)
    await disruption.allow_eviction(reg, await reg.get(pods, namespace, name), ctx)
    pre = raw.get("preconditions") or {}
    opts = DeleteOptions(
        grace_period_seconds=raw.get("gracePeriodSeconds"),
        propagation_policy=raw.get("propagationPolicy"),
        precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"),
    )
    await reg.delete(pods, namespace, name, opts, ctx)
    return success_status()
