"""Label selectors (metav1.LabelSelector) in specs: ValidateLabelSelector's causes, and matching through
`pyk8s.api.labels`."""

from __future__ import annotations

import json
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
        checked = set_operator_values(op, f.as_list(req.get("values")), req_path)
        if checked is None:
            checked = [f.invalid(f"{req_path}.operator", op, "not a valid selector operator")]
        causes += checked
        key = req.get("key")
        causes += f.check(f"{req_path}.key", str(key or ""), f.qualified_name)
    return causes


def set_operator_values(op: Any, values: list[Any], path: str) -> list[Cause] | None:
    """The values rule label and node selector requirements share: In and NotIn need values, Exists and
    DoesNotExist take none. None when `op` is none of these four."""
    if op in ("In", "NotIn"):
        return [] if values else [
            f.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")]
    if op in ("Exists", "DoesNotExist"):
        return [f.forbidden(f"{path}.values", "may not be specified when `operator` is 'Exists' or "
                                              "'DoesNotExist'")] if values else []
    return None


def is_empty(selector: Any) -> bool:
    sel = f.as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def matches(selector: Any, labels: Any) -> bool:
    """Whether `labels` satisfy a selector that validated; an empty selector matches everything."""
    try:
        return selector_from_label_selector(f.as_dict(selector)).matches(f.as_dict(labels))
    except StatusError:  # a malformed selector, already reported by validate_label_selector
        return False


def go_label_selector(selector: Any) -> str:
    """A LabelSelector as Kubernetes prints it in a cause (Go's %#v): `v1.LabelSelector{MatchLabels:
    map[string]string{"app":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`, on one line."""
    sel = f.as_dict(selector)
    labels = sel.get("matchLabels")
    shown_labels = f.go_value(labels) if isinstance(labels, dict) and labels else "map[string]string(nil)"
    requirements = []
    for raw in f.as_list(sel.get("matchExpressions")):
        req = f.as_dict(raw)
        values = f.as_list(req.get("values"))
        shown_values = f.go_value([str(v) for v in values]) if values else "[]string(nil)"
        requirements.append(
            f"v1.LabelSelectorRequirement{{Key:{json.dumps(str(req.get('key') or ''))}, "
            f"Operator:{json.dumps(str(req.get('operator') or ''))}, Values:{shown_values}}}"
        )
    shown_exprs = ("[]v1.LabelSelectorRequirement{" + ", ".join(requirements) + "}" if requirements
                   else "[]v1.LabelSelectorRequirement(nil)")  # fmt: skip
    return f"v1.LabelSelector{{MatchLabels:{shown_labels}, MatchExpressions:{shown_exprs}}}"


def invalid_selector(path: str, selector: Any, detail: str) -> Cause:
    return f.invalid_shown(path, go_label_selector(selector), detail)


def immutable_selector(path: str, new: Any, old: Any) -> list[Cause]:
    return [] if new == old else [invalid_selector(path, new, f.IMMUTABLE)]
