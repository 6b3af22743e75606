"""Label selectors (metav1.LabelSelector) in specs: ValidateLabelSelector's causes, and matching through
`pyk8s.api.labels`."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause, StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.validation import _field as f


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
    """Whether `labels` satisfy a selector that validated; an empty selector matches everything."""
    try:
        return selector_from_label_selector(f.as_dict(selector)).matches(f.as_dict(labels))
    except StatusError:  # a malformed selector, already reported by validate_label_selector
        return False
