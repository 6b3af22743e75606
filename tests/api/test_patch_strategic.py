import copy

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.patch import STRATEGIC_MERGE_PATCH, apply_patch, supports_strategic
from pyk8s.api.patch.meta import KIND_DEFINITIONS, PATCH_META, FieldPatch
from pyk8s.api.resource import ResourceInfo

DEPLOYMENT = ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True)
POD = ResourceInfo("", "v1", "Pod", "pods", "pod", True)
NODE = ResourceInfo("", "v1", "Node", "nodes", "node", False)
WIDGET = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)


def smp(info, original, patch):
    before = copy.deepcopy(original)
    result = apply_patch(info, original, patch, STRATEGIC_MERGE_PATCH)
    assert original == before, "the original must not be mutated"
    return result


def pod(containers, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": containers, **spec}}


def test_containers_merge_by_name_and_new_items_come_first():
    live = pod([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])
    patch = {"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c"}]}}
    out = smp(POD, live, patch)
    # Items both lists know keep live order; the new item follows the patch order.
    assert out["spec"]["containers"] == [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"},
                                         {"name": "c", "image": "c"}]
    # A new item cannot be ordered against server-only items, so it goes first (as Kubernetes).
    out = smp(POD, live, {"spec": {"containers": [{"name": "c", "image": "c"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a", "b"]


def test_nested_merge_lists_env_ports_volume_mounts():
    live = pod([{"name": "a", "image": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "volumeMounts": [{"name": "v", "mountPath": "/data"}]}])
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}],
                                      "ports": [{"containerPort": 443}],
                                      "volumeMounts": [{"name": "w", "mountPath": "/data"}]}]}}
    c = smp(POD, live, patch)["spec"]["containers"][0]
    assert c["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]
    assert c["ports"] == [{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}]
    assert c["volumeMounts"] == [{"name": "w", "mountPath": "/data"}]
    assert c["image"] == "a"


def test_atomic_lists_are_replaced():
    live = pod([{"name": "a", "image": "a", "args": ["x", "y"]}],
               tolerations=[{"key": "k", "operator": "Exists"}])
    out = smp(POD, live, {"spec": {"tolerations": [{"key": "j", "operator": "Exists"}],
                                   "containers": [{"name": "a", "args": ["z"]}]}})
    assert out["spec"]["tolerations"] == [{"key": "j", "operator": "Exists"}]
    assert out["spec"]["containers"][0]["args"] == ["z"]


def test_null_deletes_and_maps_merge():
    live = {"metadata": {"name": "d", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 3}}
    out = smp(DEPLOYMENT, live, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"replicas": None}})
    assert out == {"metadata": {"name": "d", "labels": {"b": "2", "c": "3"}}, "spec": {}}


def test_patch_delete_and_replace_directives_in_lists():
    live = pod([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    out = smp(POD, live, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert out["spec"]["containers"] == [{"name": "b", "image": "b"}]
    out = smp(POD, live, {"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "z", "image": "z"}]


def test_patch_directives_in_maps():
    live = {"metadata": {"name": "d", "labels": {"a": "1"}},
            "spec": {"selector": {"matchLabels": {"a": "1"}}}}
    out = smp(DEPLOYMENT, live, {"metadata": {"labels": {"b": "2", "$patch": "replace"}}})
    assert out["metadata"]["labels"] == {"b": "2"}
    out = smp(DEPLOYMENT, live, {"spec": {"selector": {"$patch": "delete"}}})
    assert out["spec"]["selector"] == {}


def test_retain_keys_clears_other_union_members():
    live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(DEPLOYMENT, live, patch)["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(StatusError) as info:
        smp(DEPLOYMENT, live, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}})
    assert (info.value.code, info.value.message) == (400, "invalid patch format of retainKeys")


def test_volumes_retain_keys_through_merge_list():
    live = pod([], volumes=[{"name": "v", "emptyDir": {}}])
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"],
                                   "hostPath": {"path": "/x"}}]}}
    assert smp(POD, live, patch)["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/x"}}]


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list():
    live = {"metadata": {"name": "p", "finalizers": ["a/x", "b/y"]}}
    out = smp(POD, live, {"metadata": {"finalizers": ["c/z", "a/x"]}})
    assert out["metadata"]["finalizers"] == ["c/z", "a/x", "b/y"]
    out = smp(POD, live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}})
    assert out["metadata"]["finalizers"] == ["b/y"]


def test_owner_references_merge_by_uid():
    live = {"metadata": {"name": "p", "ownerReferences": [{"uid": "1", "name": "a"}]}}
    out = smp(POD, live, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}})
    assert [r["uid"] for r in out["metadata"]["ownerReferences"]] == ["2", "1"]


def test_set_element_order_as_kubectl_apply_sends_it():
    live = pod([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                      "containers": [{"name": "a", "image": "a2"}]}}
    assert smp(POD, live, patch)["spec"]["containers"] == [{"name": "b", "image": "b"},
                                                           {"name": "a", "image": "a2"}]


def test_deployment_template_reaches_pod_spec_and_status_conditions_by_type():
    live = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}},
            "status": {"conditions": [{"type": "Available", "status": "False"},
                                      {"type": "Progressing", "status": "True"}]}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "2"}]}}},
             "status": {"conditions": [{"type": "Available", "status": "True"}]}}
    out = smp(DEPLOYMENT, live, patch)
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "2"}]
    assert out["status"]["conditions"] == [{"type": "Available", "status": "True"},
                                           {"type": "Progressing", "status": "True"}]


def test_node_taints_are_atomic():
    live = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    out = smp(NODE, live, {"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}})
    assert out["spec"]["taints"] == [{"key": "b", "effect": "NoSchedule"}]


def test_unknown_kind_replaces_lists():
    assert not supports_strategic(WIDGET) and supports_strategic(POD)
    out = smp(WIDGET, {"spec": {"items": [{"name": "a"}], "m": {"x": 1}}},
              {"spec": {"items": [{"name": "b"}], "m": {"y": 2}}})
    assert out == {"spec": {"items": [{"name": "b"}], "m": {"x": 1, "y": 2}}}


def test_new_key_drops_directives_and_nulls():
    out = smp(POD, {"spec": {}}, {"spec": {"containers": [{"name": "a", "image": None},
                                                          {"name": "b", "$patch": "delete"}]}})
    assert out["spec"]["containers"] == [{"name": "a"}]


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        ({"spec": {"containers": [{"image": "x"}]}}, 400,
         "map: map[image:x] does not contain declared merge key: name"),
        ({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}, 400,
         "unknown patch type: bogus in map: map[$patch:bogus name:a]"),
        ({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}, 400,
         "merging lists cannot yet be specified in the patch"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}, 400,
         "invalid patch format of primitive list"),
        (["not", "a", "map"], 400, "invalid JSON document"),
    ],
)
def test_bad_patches(patch, code, message):
    with pytest.raises(StatusError) as info:
        smp(POD, pod([{"name": "a", "image": "a"}]), patch)
    assert (info.value.code, info.value.message) == (code, message)


def test_table_shape_for_openapi():
    assert PATCH_META["io.k8s.api.core.v1.PodSpec"]["containers"] == FieldPatch(
        "merge", "name", "io.k8s.api.core.v1.Container", None)
    assert PATCH_META["io.k8s.api.core.v1.Container"]["ports"].merge_key == "containerPort"
    assert KIND_DEFINITIONS[("apps", "Deployment")] == "io.k8s.api.apps.v1.Deployment"
    # Every definition the table points to is itself in the table, so walks never dead-end silently.
    refs = {ref for fields in PATCH_META.values() for fp in fields.values() for ref in (fp.items, fp.type)}
    assert {ref for ref in refs if ref} - set(PATCH_META) == {"io.k8s.api.core.v1.Volume"}
    assert set(KIND_DEFINITIONS.values()) <= set(PATCH_META)
