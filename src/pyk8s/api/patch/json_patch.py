"""JSON patch (RFC 6902) through the `jsonpatch` library, with Kubernetes' status codes: a patch that is
not a list of objects is 400; one that decodes but does not apply (an unknown op, a failed `test`, a
missing path) is 422, as the API server answers for errors from the patch's Apply."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from pyk8s.api.errors import StatusError, bad_request, request_entity_too_large

# Kubernetes' limit on operations in one JSON patch (maxJSONPatchOperations).
MAX_OPERATIONS = 10000


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
    try:
        compiled = jsonpatch.JsonPatch(copy.deepcopy(patch))
        return compiled.apply(document, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise _unprocessable(f"the test operation failed: {e}") from None
    except (jsonpatch.InvalidJsonPatch, jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException,
            KeyError, IndexError, TypeError, ValueError) as e:
        raise _unprocessable(f"the JSON patch could not be applied: {e}") from None
