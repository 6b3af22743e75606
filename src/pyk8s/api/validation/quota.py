"""ResourceQuotas and LimitRanges."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import resources

Obj = dict[str, Any]


# --- quotas, limit ranges, events, replication controllers ----------------------------------------

_QUOTA_SCOPES = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
)


_INTEGER_QUOTA_RESOURCES = (
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
)
_QUOTA_RESOURCES = (*_INTEGER_QUOTA_RESOURCES, "cpu", "memory", "ephemeral-storage", "requests.cpu",
                    "requests.memory", "requests.storage", "requests.ephemeral-storage", "limits.cpu",
                    "limits.memory", "limits.ephemeral-storage")  # fmt: skip


def _quota_resource_errors(name: str) -> list[str]:
    """ValidateResourceQuotaResourceName: a standard quota resource unless it has a domain (count/…)."""
    if "/" in name or name in _QUOTA_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-")):
        return []
    return ["must be a standard resource for quota"]


def validate_resource_quota(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateResourceQuotaSpec: resource names, non-negative (integer) amounts, scopes."""
    spec = f.as_dict(obj.get("spec"))
    causes: list[Cause] = []
    for name, value in f.as_dict(spec.get("hard")).items():
        p = f"spec.hard[{name}]"
        name_errors = f.qualified_name(name)
        causes += [f.invalid(p, name, m) for m in name_errors or _quota_resource_errors(name)]
        amount, errs = resources.quantity(p, value)
        causes += errs
        if amount is not None and amount < 0:
            causes.append(f.invalid(p, str(value), f.NON_NEGATIVE))
        integer = name in _INTEGER_QUOTA_RESOURCES or name.startswith("count/")
        if amount is not None and integer and amount != amount.to_integral_value():
            causes.append(f.invalid(p, str(value), "must be an integer"))
    scopes = [f.key(s) for s in f.as_list(spec.get("scopes"))]
    causes += [
        f.invalid("spec.scopes", scopes, "unsupported scope") for s in scopes if s not in _QUOTA_SCOPES
    ]
    for pair in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if all(s in scopes for s in pair):
            causes.append(f.invalid("spec.scopes", scopes, "conflicting scopes"))
    return causes


_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")


def _limit_resource_errors(limit_type: str, name: str) -> list[str]:
    """validateLimitRangeResourceName: qualified, and for pods and containers a standard container
    resource unless it has a domain."""
    errors = f.qualified_name(name)
    if errors or "/" in name or limit_type not in ("Pod", "Container"):
        return errors
    if name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return []
    return ["must be a standard limit type or fully qualified"]


# (smaller, larger, reported at, value shown, message): the orders ValidateLimitRange enforces.
_LIMIT_ORDER = (
    ("min", "max", "min", "min", "min value {min} is greater than max value {max}"),
    ("min", "defaultRequest", "defaultRequest", "defaultRequest",
     "min value {min} is greater than default request value {defaultRequest}"),
    ("defaultRequest", "max", "defaultRequest", "defaultRequest",
     "default request value {defaultRequest} is greater than max value {max}"),
    ("defaultRequest", "default", "defaultRequest", "defaultRequest",
     "default request value {defaultRequest} is greater than default limit value {default}"),
    ("min", "default", "default", "min", "min value {min} is greater than default value {default}"),
    ("default", "max", "default", "max", "default value {default} is greater than max value {max}"),
)  # fmt: skip


def _limit_range_item(item: Obj, p: str) -> list[Cause]:
    causes: list[Cause] = []
    limit_type = f.key(item.get("type") or "")
    amounts: dict[str, dict[str, Decimal]] = {}
    shown: dict[str, dict[str, str]] = {}
    keys: list[str] = []
    sections = ["max", "min", "maxLimitRequestRatio"]
    if limit_type == "Pod":
        causes += [f.forbidden(f"{p}.{key}", "may not be specified when `type` is 'Pod'")
                   for key in ("default", "defaultRequest") if item.get(key)]  # fmt: skip
    else:
        sections += ["default", "defaultRequest"]
    for section in sections:
        for name, value in f.as_dict(item.get(section)).items():
            path = f"{p}.{section}[{name}]"
            causes += [f.invalid(path, name, m) for m in _limit_resource_errors(limit_type, name)]
            amount, errs = resources.quantity(path, value)
            causes += errs
            if amount is not None:
                amounts.setdefault(section, {})[name] = amount
                shown.setdefault(section, {})[name] = str(value)
                if name not in keys:
                    keys.append(name)
    if limit_type == "PersistentVolumeClaim" and not (
        "storage" in f.as_dict(item.get("min")) or "storage" in f.as_dict(item.get("max"))
    ):
        detail = "either minimum or maximum storage value is required, but neither was provided"
        causes.append(f.required(f"{p}.limits", detail))
    for k in keys:
        a = {section: amounts.get(section, {}).get(k) for section in sections}
        t = {section: shown.get(section, {}).get(k, "") for section in sections}
        for left, right, at, value, template in _LIMIT_ORDER:
            low, high = a.get(left), a.get(right)
            if low is not None and high is not None and low > high:
                causes.append(f.invalid_shown(f"{p}.{at}[{k}]", t[value], template.format(**t)))
        ratio, lo, hi = a["maxLimitRequestRatio"], a["min"], a["max"]
        ratio_path, ratio_text = f"{p}.maxLimitRequestRatio[{k}]", t["maxLimitRequestRatio"]
        if ratio is not None and ratio < 1:
            causes.append(f.invalid_shown(ratio_path, ratio_text, f"ratio {ratio_text} is less than 1"))
        if ratio is not None and lo and hi is not None and ratio > hi / lo:
            detail = f"ratio {ratio_text} is greater than max/min = {float(hi / lo):f}"
            causes.append(f.invalid_shown(ratio_path, ratio_text, detail))
    return causes


def validate_limit_range(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateLimitRange: one item per type, known resource names, min ≤ default request ≤ default ≤
    max, and sane ratios."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate(f.as_list(f.as_dict(obj.get("spec")).get("limits"))):
        p = f"spec.limits[{i}]"
        item = f.as_dict(item)
        limit_type = f.key(item.get("type") or "")
        if limit_type not in _LIMIT_TYPES:
            causes.append(
                f.invalid(f"{p}.type", limit_type, "must be a standard limit type or fully qualified")
            )
        if limit_type in seen:
            causes.append(f.duplicate(f"{p}.type", limit_type))
        seen.add(limit_type)
        causes += _limit_range_item(item, p)
    return causes
