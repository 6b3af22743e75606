"""Hostile input: whatever JSON a client sends as a patch or apply configuration, the result is an object
or a StatusError (a 4xx for the client), never another exception (a 500)."""

import copy

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyk8s.api.apply import server_side_apply, track_update
from pyk8s.api.errors import StatusError
from pyk8s.api.labels import selector_from_label_selector
from pyk8s.api.meta import validate_object_meta
from pyk8s.api.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from pyk8s.api.resource import ResourceInfo

POD = ResourceInfo("", "v1", "Pod", "pods", "pod", True, subresources={"status": "Pod"})

_keys = st.sampled_from([
    "spec", "containers", "name", "image", "metadata", "labels", "finalizers", "$patch", "$retainKeys",
    "$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers", "env", "ports", "containerPort",
    "volumes", "replace", "delete", "merge", "managedFields", "ownerReferences", "uid", "matchLabels",
    "matchExpressions", "key", "operator", "values", "In", "status", "conditions", "type", "op", "path",
])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _keys, st.text(max_size=3))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(_keys, inner, max_size=4)),
                     max_leaves=20)


def _survives(call, *args):
    try:
        result = call(*args)
    except StatusError as e:
        assert 400 <= e.code < 500, e
        return None
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_json, _json)
@example(None, {"metadata": {"managedFields": True}})  # found by hypothesis: was a TypeError
def test_patches_and_apply_never_fail_with_anything_but_a_client_error(original, patch):
    original = original if isinstance(original, dict) else {"x": original}
    for patch_type in (STRATEGIC_MERGE_PATCH, MERGE_PATCH, JSON_PATCH):
        result = _survives(apply_patch, POD, original, patch, patch_type)
        assert result is None or isinstance(result, dict)
    if isinstance(patch, dict):
        _survives(server_side_apply, POD, original, patch, "m", False)
        _survives(server_side_apply, POD, None, patch, "m", True)
        _survives(track_update, POD, original, copy.deepcopy(patch), "m")
    _survives(selector_from_label_selector, patch)
    assert isinstance(validate_object_meta(original.get("metadata"), True), list)
