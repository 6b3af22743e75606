"""Resource quantities and container resource requirements (ValidateResourceRequirements)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.quantity import QuantityError, parse_quantity
from pyk8s.api.validation import _field as f

Obj = dict[str, Any]

_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


# --- resources ------------------------------------------------------------------------------------


def _native(name: str) -> bool:
    return "/" not in name or name.startswith("kubernetes.io/") or ".kubernetes.io/" in name.split("/")[0]


def _overcommit_allowed(name: str) -> bool:
    return _native(name) and not name.startswith("hugepages-")


def quantity(path: str, value: Any) -> tuple[Decimal | None, list[Cause]]:
    try:
        return parse_quantity(value), []
    except QuantityError as err:
        return None, [f.invalid(path, value, str(err))]


def validate_resource_requirements(res: Any, path: str) -> list[Cause]:
    """ValidateResourceRequirements: names, non-negative quantities, requests ≤ limits."""
    res = f.as_dict(res)
    causes: list[Cause] = []
    limits: dict[str, Decimal] = {}
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    for name, value in f.as_dict(res.get("limits")).items():
        causes += _resource_name(name, f"{lim_path}[{name}]")
        amount, errs = quantity(f"{lim_path}[{name}]", value)
        causes += errs
        if amount is not None:
            limits[name] = amount
            if amount < 0:
                causes.append(f.invalid(f"{lim_path}[{name}]", str(value), f.NON_NEGATIVE))
    for name, value in f.as_dict(res.get("requests")).items():
        causes += _resource_name(name, f"{req_path}[{name}]")
        amount, errs = quantity(f"{req_path}[{name}]", value)
        causes += errs
        if amount is None:
            continue
        if amount < 0:
            causes.append(f.invalid(f"{req_path}[{name}]", str(value), f.NON_NEGATIVE))
        limit = limits.get(name)
        limit_text = str(f.as_dict(res.get("limits")).get(name))
        if limit is not None:
            if amount != limit and not _overcommit_allowed(name):
                causes.append(
                    f.invalid(req_path, str(value), f"must be equal to {name} limit of {limit_text}")
                )
            elif amount > limit:
                causes.append(
                    f.invalid(
                        req_path, str(value), f"must be less than or equal to {name} limit of {limit_text}"
                    )
                )
        elif not _overcommit_allowed(name):
            causes.append(f.required(lim_path, "Limit must be set for non overcommitable resources"))
    return causes


def _resource_name(name: str, path: str) -> list[Cause]:
    causes = f.check(path, name, f.qualified_name)
    if causes:
        return causes
    if "/" not in name and name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        return [f.invalid(path, name, "must be a standard resource for containers")]
    return []
