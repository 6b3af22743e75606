"""Small helpers for defaulting JSON-shaped objects in place."""

from __future__ import annotations

from typing import Any

from pyk8s.api.quantity import QuantityError, canonical_quantity

Obj = dict[str, Any]


def child(obj: Obj, key: str) -> Obj:
    """obj[key] as a dict, created when absent; a wrong type is left for validation to report."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[Obj]:
    """The dict items of a list field (anything else is validation's business)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def set_default(obj: Obj, key: str, value: Any) -> None:
    """Kubernetes defaults nil fields: an absent key or an explicit null. Empty strings count as unset
    for enum fields, which Kubernetes defaults when empty too."""
    if obj.get(key) in (None, ""):
        obj[key] = value


def as_dict(value: Any) -> Obj:
    """A read-only view: the value when it is an object, else {} (validation reports wrong types)."""
    return value if isinstance(value, dict) else {}


def canonical_resources(obj: Any, key: str) -> None:
    """SetDefaults_ResourceList: every quantity of obj[key] rounded up to milli and in the canonical form
    Kubernetes serves (`0.5` → `500m`). Values that do not parse stay for validation to report."""
    if not isinstance(obj, dict) or not isinstance(obj.get(key), dict):
        return
    resources = obj[key]
    for name, value in resources.items():
        try:
            resources[name] = canonical_quantity(value, milli=True)
        except (QuantityError, TypeError):
            continue


def canonical_quantity_field(obj: Any, key: str) -> None:
    """A single Quantity field (sizeLimit, divisor) in its canonical form."""
    if isinstance(obj, dict) and obj.get(key) is not None:
        try:
            obj[key] = canonical_quantity(obj[key])
        except (QuantityError, TypeError):
            pass
