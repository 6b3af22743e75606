"""managedFields tracking compares values as JSON, and FieldsV1 members come out sorted."""

import json

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


def test_an_unchanged_entry_is_written_back_canonical_and_not_shared_with_the_live_object():
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    track_update(CM, None, live, "first")
    new = {**live, "metadata": {"name": "c"}, "status": {"s": 1}}
    track_update(CM, live, new, "second", subresource="status")
    (kept,) = [e for e in new["metadata"]["managedFields"] if e["manager"] == "first"]
    assert kept["fieldsV1"] == live["metadata"]["managedFields"][0]["fieldsV1"]
    assert kept["fieldsV1"] is not live["metadata"]["managedFields"][0]["fieldsV1"]
    assert kept["fieldsV1"]["f:data"] is not live["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]


@pytest.mark.parametrize("sent", [
    {"f:data": {".": {}}},  # "." with no members below: just the node
    {"f:x": {}, "f:data": {}},  # members out of order
    {"f:data": {"f:k": {}, ".": {}}},  # "." not first
    {"f:data": {".": {"x": 1}, "f:k": {}}},  # "." with content
    {".": {}, "f:data": {}},  # "." at the top
    {"f:l": {'k:{"b":1, "a":2}': {}}},  # key JSON not canonical
])
def test_sent_fieldsv1_is_written_back_canonical(sent):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": [
        {"manager": "m", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": sent}]}}
    track_update(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, obj, "m")
    (entry,) = obj["metadata"]["managedFields"]
    # Compared as JSON text: the order of members matters too.
    assert json.dumps(entry["fieldsV1"]) == json.dumps(fields_to_v1(fields_from_v1(sent)))


def test_objects_of_one_shape_do_not_share_their_fieldsv1():
    def create():
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
        track_update(CM, None, obj, "m")
        return obj["metadata"]["managedFields"][0]["fieldsV1"]

    first = create()
    first["f:data"]["f:changed"] = {}
    assert create() == {"f:data": {".": {}, "f:k": {}}}
