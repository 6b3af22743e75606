"""The unknown-field check against the OpenAPI schema: nested objects, lists, maps, and references."""

from pyk8s.api.catalog import lookup
from pyk8s.apiserver.openapi.schema import unknown_fields


def test_unknown_fields_are_found_at_every_depth_and_only_there():
    pods = lookup("", "v1", "pods")
    assert pods is not None
    pod = {"apiVersion": "v1", "kind": "Pod", "bogus": 1,
           "metadata": {"name": "p", "labels": {"any": "x"}, "nope": {"deep": 1}},
           "spec": {"containers": [{"name": "a", "image": "i", "imagePullPolcy": "Always",
                                    "resources": {"limits": {"cpu": "1"}},
                                    "env": [{"name": "E",
                                             "valueFrom": {"fieldRef": {"fieldPath": "x", "z": 1}}}]},
                                   "scalar-in-a-list", {"name": "b", "extra": [1]}],
                    "nodeSelector": {"k": "v"}}}
    assert unknown_fields(pods, pod) == [
        "bogus", "metadata.nope", "spec.containers[0].imagePullPolcy",
        "spec.containers[0].env[0].valueFrom.fieldRef.z", "spec.containers[2].extra"]
    # The same answer twice: what is remembered about the schema does not change it.
    assert unknown_fields(pods, pod) == unknown_fields(pods, pod)
    assert unknown_fields(pods, {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}}) == []
