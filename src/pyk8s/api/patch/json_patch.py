"""JSON patch (RFC 6902) through the `jsonpatch` library, with Kubernetes' status codes: a patch that is
not a list of objects is 400; one that decodes but does not apply (an unknown op, a failed `test`, a
missing path) is 422, as the API server answers for errors from the patch's Apply."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from pyk8s.api.errors import StatusError, bad_request, request_entity_too_large

# Kubernetes' limit on operations in one JSON patch (maxJSONPatchOperations).
MAX_OPERATIONS = 10000


_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


def _unprocessable(message: str) -> StatusError:
    return StatusError(422, "Invalid", message)


def json_patch(document: Any, patch: Any) -> Any:
    """Apply the decoded RFC 6902 `patch` to a copy of `document`."""
    if not isinstance(patch, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(patch) > MAX_OPERATIONS:
        raise request_entity_too_large(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(patch)}")
    for op in patch:
        if not isinstance(op, dict):
            raise bad_request("json: cannot unmarshal non-object into Go value of type jsonpatch.Operation")
    # Operation by operation, so an error can name the operation that failed, as Kubernetes' does.
    result = copy.deepcopy(document)
    for op in patch:
        kind, path = op.get("op"), op.get("path")
        if kind not in _OPERATIONS:
            raise _unprocessable(f"Unexpected kind: {kind}")
        try:
            result = jsonpatch.JsonPatch([copy.deepcopy(op)]).apply(result, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise _unprocessable(f"testing value {path} failed: test failed") from None
        except (jsonpatch.InvalidJsonPatch, jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException,
                KeyError, IndexError, TypeError, ValueError) as e:
            raise _unprocessable(f"error in {kind} for path: '{path}': {e}") from None
    return result
