"""JSON merge patch (RFC 7386): objects merge key by key, null deletes, everything else replaces."""

from __future__ import annotations

from typing import Any

from pyk8s.api.jsoncopy import json_copy


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch); inputs are not mutated."""
    if not isinstance(patch, dict):
        return json_copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def create_merge_patch(source: Any, target: Any) -> Any:
    """A merge patch that turns `source` into `target` (the inverse of merge_patch, as kubectl computes
    for `kubectl apply` on CRDs). Nulls inside `target` cannot be expressed by RFC 7386 and are dropped."""
    if not isinstance(source, dict) or not isinstance(target, dict):
        return json_copy(target)
    patch: dict[str, Any] = {}
    for key in source:
        if key not in target:
            patch[key] = None
    for key, value in target.items():
        if key not in source:
            patch[key] = json_copy(value)
        elif source[key] != value or type(source[key]) is not type(value):
            if isinstance(value, dict) and isinstance(source[key], dict):
                patch[key] = create_merge_patch(source[key], value)
            else:
                patch[key] = json_copy(value)
    return patch
