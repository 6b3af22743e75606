"""Label and field selectors of a list or watch request, as one predicate over objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyk8s.api import errors
from pyk8s.api.fields import field_value, parse_field_selector
from pyk8s.api.labels import Selector, parse_selector, selector_from_label_selector, selector_from_set
from pyk8s.api.resource import ResourceInfo

Matcher = Callable[[dict[str, Any]], bool]


def label_matcher(selector: str | None) -> Matcher | None:
    """A predicate over objects, or None when the selector selects everything."""
    if not selector:
        return None
    sel = parse_selector(selector)
    if sel.empty:
        return None
    return lambda obj: sel.matches(obj.get("metadata", {}).get("labels"))


def field_matcher(info: ResourceInfo, selector: str | None) -> Matcher | None:
    """Only metadata.name, metadata.namespace and the kind's own selectable fields may be used."""
    if not selector:
        return None
    sel = parse_field_selector(selector)
    if sel.empty:
        return None
    supported = {"metadata.name", "metadata.namespace", *info.field_selectors}
    for r in sel.requirements:
        if r.field not in supported:
            raise errors.bad_request(f"field label not supported: {r.field}")
    # Only the fields the selector names: a watch matches every event of its resource, twice.
    needed = tuple({r.field for r in sel.requirements})
    return lambda obj: sel.matches({f: field_value(obj, f) for f in needed})


def combine(*matchers: Matcher | None) -> Matcher | None:
    present = [m for m in matchers if m is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return lambda obj: all(m(obj) for m in present)


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector for a LabelSelector object, or a plain map (ReplicationController)."""
    if not isinstance(sel, dict):
        return ""
    parsed: Selector
    if "matchLabels" in sel or "matchExpressions" in sel:
        parsed = selector_from_label_selector(sel)
    else:
        parsed = selector_from_set(sel)
    return str(parsed)
