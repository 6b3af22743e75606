"""Patches: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch; server-side apply is
`pyk8s.api.apply`. The API server calls `apply_patch`."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import StatusError, bad_request, unsupported_media_type
from pyk8s.api.patch.json_patch import json_patch
from pyk8s.api.patch.merge_patch import merge_patch
from pyk8s.api.patch.meta import definition_for
from pyk8s.api.patch.strategic import PatchError, strategic_merge
from pyk8s.api.resource import ResourceInfo

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def supports_strategic(info: ResourceInfo) -> bool:
    """Kubernetes serves strategic merge patch only for built-in kinds; for custom resources it answers
    415. The server decides; this says whether the kind has patch metadata here."""
    return definition_for(info.group, info.kind) is not None


def apply_patch(info: ResourceInfo, original: dict[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """The object `original` becomes under `patch` (already decoded from JSON) of `patch_type`
    (one of JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH). Raises StatusError (400/422) on a bad patch.
    Never mutates `original`."""
    if patch_type == JSON_PATCH:
        result = json_patch(original, patch)
    elif patch_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("Invalid JSON Patch")
        result = merge_patch(original, patch)
    elif patch_type == STRATEGIC_MERGE_PATCH:
        try:
            result = strategic_merge(original, patch, definition_for(info.group, info.kind))
        except PatchError as e:
            raise StatusError(e.code, "BadRequest" if e.code == 400 else "Invalid", str(e)) from None
    else:
        raise unsupported_media_type(patch_type)
    if not isinstance(result, dict):
        raise bad_request("the patched object is not a JSON object")
    return result
