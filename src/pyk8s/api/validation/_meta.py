"""ObjectMeta checks on update (ValidateObjectMetaUpdate); the create checks are `pyk8s.api.meta`'s."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.meta import NameRule, name_is_dns_label, name_is_dns_subdomain, name_is_path_segment
from pyk8s.api.meta import validate_object_meta as validate_object_meta
from pyk8s.api.validation import _field as f

__all__ = [
    "NameRule",
    "name_is_dns1035_label",
    "name_is_dns_label",
    "name_is_dns_subdomain",
    "name_is_path_segment",
    "validate_object_meta",
    "validate_object_meta_update",
]


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """NameIsDNS1035Label, the rule for service names; a generateName prefix may end in '-'."""
    if prefix and len(name) > 1 and name.endswith("-"):
        name = name[:-1] + "a"
    return f.dns1035_label(name)


def validate_object_meta_update(meta: Any, old_meta: Any) -> list[Cause]:
    new, old = f.as_dict(meta), f.as_dict(old_meta)
    return [
        f.invalid(f"metadata.{key}", new.get(key) or "", f.IMMUTABLE)
        for key in ("name", "namespace", "uid", "creationTimestamp")
        if old.get(key) and new.get(key) != old.get(key)
    ]
