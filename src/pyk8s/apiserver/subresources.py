"""Subresources with their own shape: scale (autoscaling/v1 Scale), pods/binding, pods/eviction.
(status and namespaces/finalize are updates of the parent; the registry handles them.)"""

from __future__ import annotations

from typing import Any

from pyk8s.api import errors
from pyk8s.api.catalog import lookup
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver import admission
from pyk8s.apiserver.interfaces import AdmissionRequest, Obj
from pyk8s.apiserver.registry import (
    DeleteOptions,
    Registry,
    RequestContext,
    deep_copy,
    encode_for_store,
    now_rfc3339,
    patched,
)
from pyk8s.apiserver.selectors import format_label_selector
from pyk8s.apiserver.watch_cache import decode
from pyk8s.store.errors import Conflict

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
        new = deep_copy(parent)
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
    while True:
        kv = await reg._get_kv(pods, namespace, name)
        pod = decode(kv)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict(
                "pods/binding", name, "", f"pod {name} is being deleted, cannot be assigned to a host"
            )
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(
                "pods/binding", name, "", f'pod {name} is already assigned to node "{current}"'
            )
        new = deep_copy(pod)
        new.setdefault("spec", {})["nodeName"] = node
        annotations = meta.get("annotations") or {}
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        conditions = [
            c
            for c in (new.setdefault("status", {}).get("conditions") or [])
            if c.get("type") != "PodScheduled"
        ]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(),
            }
        )
        new["status"]["conditions"] = conditions
        try:
            # The binding writes spec and status at once, which no public endpoint may: write directly.
            if ctx.dry_run:
                return success_status()
            await reg.store.update(kv.key, encode_for_store(new), kv.mod_revision)
        except Conflict:
            continue
        return success_status()


async def _admit(
    reg: Registry, info: ResourceInfo, sub: str, namespace: str, name: str, obj: Obj, ctx: RequestContext
) -> None:
    """Admission sees a binding or an eviction as a CREATE of the pod's subresource, with that object."""
    req = AdmissionRequest("CREATE", info, sub, namespace, name, obj, None, ctx.user, ctx.dry_run)
    await admission.run_mutating(reg.plugins, req)
    await admission.run_validating(reg.plugins, req)


async def evict(reg: Registry, namespace: str, name: str, eviction: Obj, ctx: RequestContext) -> Obj:
    """pods/eviction: delete the pod with the eviction's options (disruption budgets: not yet)."""
    pods = lookup("", "v1", "pods")
    assert pods is not None
    meta = eviction.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    await _admit(reg, pods, "eviction", namespace, name, eviction, ctx)
    raw = eviction.get("deleteOptions") or {}
    pre = raw.get("preconditions") or {}
    opts = DeleteOptions(
        grace_period_seconds=raw.get("gracePeriodSeconds"),
        propagation_policy=raw.get("propagationPolicy"),
        precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"),
    )
    if ctx.dry_run or "All" in (raw.get("dryRun") or []):
        ctx.dry_run = True
    await reg.delete(pods, namespace, name, opts, ctx)
    return success_status()
