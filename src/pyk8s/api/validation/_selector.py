"""Label selectors (metav1.LabelSelector): validation as ValidateLabelSelector, and matching."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> list[Cause]:
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return f.type_check(path, selector, dict, "an object")
    causes = f.validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, req in enumerate(f.as_list(selector.get("matchExpressions"))):
        req_path = f"{path}.matchExpressions[{i}]"
        req = f.as_dict(req)
        op = req.get("operator")
        values = f.as_list(req.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                causes.append(
                    f.required(f"{req_path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    f.forbidden(
                        f"{req_path}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            causes.append(f.invalid(f"{req_path}.operator", op, "not a valid selector operator"))
        key = req.get("key")
        causes += f.check(f"{req_path}.key", str(key or ""), f.qualified_name)
    return causes


def is_empty(selector: Any) -> bool:
    sel = f.as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def matches(selector: Any, labels: Any) -> bool:
    """Whether `labels` satisfy the selector; an empty selector matches everything, as Kubernetes."""
    sel = f.as_dict(selector)
    have = f.as_dict(labels)
    if any(have.get(k) != v for k, v in f.as_dict(sel.get("matchLabels")).items()):
        return False
    for raw in f.as_list(sel.get("matchExpressions")):
        req = f.as_dict(raw)
        key, op, values = str(req.get("key")), req.get("operator"), f.as_list(req.get("values"))
        present = key in have
        if (
            (op == "In" and (not present or have[key] not in values))
            or (op == "NotIn" and present and have[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
            or op not in _OPERATORS
        ):
            return False
    return True
