"""managedFields tracking compares values as JSON, and FieldsV1 members come out sorted."""

import pytest

from pyk8s.api.apply import fields_from_v1, fields_to_v1, track_update
from pyk8s.api.resource import ResourceInfo

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)


def managers(obj):
    return [e["manager"] for e in obj["metadata"]["managedFields"]]


@pytest.mark.parametrize(("before", "after"), [(1, True), (1, 1.0), (0.0, -0.0), ({"a": 1}, {"a": True}),
                                               ([1], [1.0]), ("1", 1)])
def test_a_value_that_changes_as_json_moves_to_the_writer(before, after):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "x": before}
    track_update(CM, None, obj, "first")
    new = {**obj, "x": after}
    track_update(CM, obj, new, "second")
    assert managers(new) == ["second"]


@pytest.mark.parametrize("value", [1, True, 0.5, "s", [{"b": None}, 2.0], [1, "x"]])
def test_an_unchanged_value_stays_with_its_owner(value):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "x": value}
    track_update(CM, None, obj, "first")
    new = {**obj, "data": {"k": "v"}}
    track_update(CM, obj, new, "second")
    entries = {e["manager"]: e["fieldsV1"] for e in new["metadata"]["managedFields"]}
    assert entries == {"first": {"f:x": {}}, "second": {"f:data": {".": {}, "f:k": {}}}}


def test_fieldsv1_members_are_sorted_with_the_node_itself_first():
    paths = {(("f", "spec"), ("f", "b")), (("f", "spec"), ("f", "a")), (("f", "spec"),),
             (("f", "spec"), ("k", '{"name":"z"}')), (("f", "spec"), ("k", '{"name":"z"}'), ("f", "y")),
             (("f", "meta"),), (("f", "spec"), ("f", "ab"))}
    v1 = fields_to_v1(paths)
    assert list(v1) == ["f:meta", "f:spec"]
    assert list(v1["f:spec"]) == [".", "f:a", "f:ab", "f:b", 'k:{"name":"z"}']
    assert v1["f:spec"]['k:{"name":"z"}'] == {".": {}, "f:y": {}}
    assert fields_from_v1(v1) == paths
