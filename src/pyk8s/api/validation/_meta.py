"""The ObjectMeta checks every kind gets (ValidateObjectMeta and ValidateObjectMetaUpdate), minimal:
the full rules (owner references, finalizers, annotation size) live in `pyk8s.api.meta`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f

NameRule = Callable[[str], list[str]]


def _mask_trailing_dash(prefix: str) -> str:
    # A generateName prefix may end in '-': the random suffix follows it.
    return prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


def validate_object_meta(meta: Any, namespaced: bool, name_rule: NameRule) -> list[Cause]:
    if not isinstance(meta, dict):
        return [f.required("metadata.name", "name or generateName is required")]
    causes: list[Cause] = []
    generate_name = str(meta.get("generateName") or "")
    if generate_name:
        causes += [
            f.invalid("metadata.generateName", generate_name, m)
            for m in name_rule(_mask_trailing_dash(generate_name))
        ]
    name = meta.get("name")
    if not name:
        causes.append(f.required("metadata.name", "name or generateName is required"))
    else:
        causes += f.check("metadata.name", str(name), name_rule)
    namespace = meta.get("namespace")
    if namespaced:
        if not namespace:
            causes.append(f.required("metadata.namespace", ""))
        else:
            causes += f.check("metadata.namespace", str(namespace), f.dns1123_label)
    elif namespace:
        causes.append(f.forbidden("metadata.namespace", "not allowed on this type"))
    causes += f.validate_labels(meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        for key in annotations:
            causes += f.check("metadata.annotations", str(key).lower(), f.qualified_name)
    return causes


def validate_object_meta_update(meta: Any, old_meta: Any) -> list[Cause]:
    new, old = f.as_dict(meta), f.as_dict(old_meta)
    return [
        f.invalid(f"metadata.{key}", new.get(key) or "", f.IMMUTABLE)
        for key in ("name", "namespace", "uid", "creationTimestamp")
        if old.get(key) and new.get(key) != old.get(key)
    ]
