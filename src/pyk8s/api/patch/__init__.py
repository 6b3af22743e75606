"""Patches: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch, server-side apply.

SEAM: the api-model work implements these; the API server calls them.
"""

from __future__ import annotations

from typing import Any

from pyk8s.api.resource import ResourceInfo

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def apply_patch(info: ResourceInfo, original: dict[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """The object `original` becomes under `patch` (already decoded from JSON) of `patch_type`
    (one of JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH). Raises StatusError (400/422) on a bad patch.
    Never mutates `original`."""
    raise NotImplementedError
