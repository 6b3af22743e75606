import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk8s.api.apply import fields_from_v1, fields_to_v1, server_side_apply, track_update
from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo

DEPLOYMENT = ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True,
                          subresources={"status": "Deployment", "scale": "Scale"})
CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)


def deployment(replicas=None, labels=None, containers=None):
    spec = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": containers or [{"name": "web", "image": "nginx"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    meta = {"name": "web", "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def entries(obj):
    return {(e["manager"], e["operation"], e.get("subresource", "")): e
            for e in obj["metadata"]["managedFields"]}


def test_apply_creates_and_records_fieldsv1_as_kubernetes():
    obj = server_side_apply(DEPLOYMENT, None, deployment(replicas=2, labels={"tier": "fe"}), "kubectl", False)
    assert obj["spec"]["replicas"] == 2
    (entry,) = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("kubectl", "Apply", "apps/v1")
    assert entry["fieldsType"] == "FieldsV1" and entry["time"].endswith("Z")
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:tier": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},  # LabelSelector is atomic
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}},
            },
        },
    }


def test_reapply_removes_what_the_manager_no_longer_applies():
    obj = server_side_apply(DEPLOYMENT, None, deployment(labels={"a": "1", "b": "2"},
                                                           containers=[{"name": "web", "image": "nginx"},
                                                                       {"name": "side", "image": "busybox"}]),
                            "kubectl", False)
    obj = server_side_apply(DEPLOYMENT, obj, deployment(labels={"a": "1"}), "kubectl", False)
    assert obj["metadata"]["labels"] == {"a": "1"}
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_conflict_with_an_update_manager_is_409_with_kubernetes_message():
    live = deployment(replicas=1)
    track_update(DEPLOYMENT, None, live, "kubectl-client-side-apply")
    with pytest.raises(StatusError) as info:
        server_side_apply(DEPLOYMENT, live, deployment(replicas=3), "kubectl", False)
    err = info.value
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                           "using apps/v1: .spec.replicas")
    assert err.details["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                      "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]
    assert err.to_status()["details"]["causes"][0]["field"] == ".spec.replicas"


def test_several_conflicts_are_listed_per_manager():
    live = deployment(replicas=1, labels={"a": "1"})
    track_update(DEPLOYMENT, None, live, "other")
    with pytest.raises(StatusError) as info:
        server_side_apply(DEPLOYMENT, live, deployment(replicas=3, labels={"a": "2"}), "kubectl", False)
    assert info.value.message == ('Apply failed with 2 conflicts: conflicts with "other" using apps/v1:\n'
                                  "- .metadata.labels.a\n- .spec.replicas")


def test_force_moves_ownership():
    live = deployment(replicas=1)
    track_update(DEPLOYMENT, None, live, "kubectl-client-side-apply")
    obj = server_side_apply(DEPLOYMENT, live, deployment(replicas=3), "kubectl", True)
    assert obj["spec"]["replicas"] == 3
    by = entries(obj)
    assert "f:replicas" in by[("kubectl", "Apply", "")]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in by[("kubectl-client-side-apply", "Update", "")]["fieldsV1"]["f:spec"]


def test_same_value_is_shared_not_a_conflict_and_survives_the_other_dropping_it():
    live = deployment(replicas=3)
    track_update(DEPLOYMENT, None, live, "other")
    obj = server_side_apply(DEPLOYMENT, live, deployment(replicas=3), "kubectl", False)
    by = entries(obj)
    assert "f:replicas" in by[("other", "Update", "")]["fieldsV1"]["f:spec"]
    assert "f:replicas" in by[("kubectl", "Apply", "")]["fieldsV1"]["f:spec"]
    # kubectl stops applying replicas: "other" still owns it, so it stays.
    obj = server_side_apply(DEPLOYMENT, obj, deployment(), "kubectl", False)
    assert obj["spec"]["replicas"] == 3


def test_two_appliers_merge_list_items_by_key():
    obj = server_side_apply(DEPLOYMENT, None, deployment(), "a", False)
    sidecar = deployment(containers=[{"name": "side", "image": "busybox"}])
    obj = server_side_apply(DEPLOYMENT, obj, sidecar, "b", False)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
    # b withdraws its sidecar; a's container stays.
    obj = server_side_apply(DEPLOYMENT, obj, deployment(containers=[{"name": "web", "image": "nginx"}]), "b",
                            False)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_status_is_not_owned_through_the_main_resource():
    applied = deployment()
    applied["status"] = {"replicas": 5}
    obj = server_side_apply(DEPLOYMENT, None, applied, "kubectl", False)
    assert "status" not in obj
    assert "f:status" not in obj["metadata"]["managedFields"][0]["fieldsV1"]


def test_track_update_create_then_update_takes_fields():
    obj = deployment(replicas=1, labels={"a": "1"})
    track_update(DEPLOYMENT, None, obj, "kubectl-create")
    (entry,) = obj["metadata"]["managedFields"]
    assert entry["operation"] == "Update" and entry["manager"] == "kubectl-create"
    fields = entry["fieldsV1"]
    # Maps that appear are members themselves ("."); struct fields are not.
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:a": {}}}
    assert "f:name" not in fields["f:metadata"] and "f:apiVersion" not in fields
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}'] == {
        ".": {}, "f:image": {}, "f:name": {}}

    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 4
    del new["metadata"]["labels"]["a"]
    new["metadata"]["managedFields"] = None  # a client that does not send managedFields keeps the live ones
    track_update(DEPLOYMENT, obj, new, "kubectl-scale")
    by = entries(new)
    assert by[("kubectl-scale", "Update", "")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    creator = by[("kubectl-create", "Update", "")]["fieldsV1"]
    assert "f:replicas" not in creator["f:spec"] and "f:a" not in creator["f:metadata"].get("f:labels", {})


def test_track_update_status_subresource():
    old = deployment()
    track_update(DEPLOYMENT, None, old, "kubectl")
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    track_update(DEPLOYMENT, old, new, "kube-controller-manager", subresource="status")
    entry = entries(new)[("kube-controller-manager", "Update", "status")]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:replicas": {}, "f:conditions": {
        'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}}}}


def test_no_change_keeps_entry_time():
    obj = deployment()
    track_update(DEPLOYMENT, None, obj, "m")
    stamp = obj["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"
    same = copy.deepcopy(obj)
    track_update(DEPLOYMENT, obj, same, "m")
    assert same["metadata"]["managedFields"][0]["time"] == stamp


def test_before_first_apply_owns_untracked_live_fields():
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    with pytest.raises(StatusError) as info:
        server_side_apply(CM, live, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                     "data": {"a": "2"}}, "kubectl", False)
    assert '"before-first-apply" using v1: .data.a' in info.value.message


def test_managed_fields_in_apply_config_are_refused():
    with pytest.raises(StatusError) as info:
        server_side_apply(CM, None, {"metadata": {"name": "c", "managedFields": [{"manager": "x"}]}}, "k",
                          False)
    assert info.value.code == 400


def test_fieldsv1_round_trip():
    paths = {(("f", "metadata"), ("f", "labels")), (("f", "metadata"), ("f", "labels"), ("f", "a")),
             (("f", "spec"), ("f", "ports"), ("k", '{"port":80}')),
             (("f", "spec"), ("f", "ports"), ("k", '{"port":80}'), ("f", "port")),
             (("f", "metadata"), ("f", "finalizers"), ("v", '"x/y"'))}
    encoded = fields_to_v1(paths)
    assert encoded["f:metadata"]["f:finalizers"] == {'v:"x/y"': {}}
    assert fields_from_v1(encoded) == paths


def _one(image, ports=None, name="web"):
    container = {"name": name, "image": image}
    if ports is not None:
        container["ports"] = ports
    return deployment(containers=[container])


def test_container_ports_are_keyed_by_port_and_protocol():
    ports = [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
             {"containerPort": 53, "name": "dns-tcp"}]
    obj = server_side_apply(DEPLOYMENT, None, _one("coredns", ports), "kubectl", False)
    spec_fields = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert set(spec_fields["f:containers"]['k:{"name":"web"}']["f:ports"]) == {
        'k:{"containerPort":53,"protocol":"UDP"}', 'k:{"containerPort":53,"protocol":"TCP"}'}
    # Dropping the UDP port removes only it.
    obj = server_side_apply(DEPLOYMENT, obj, _one("coredns", ports[1:]), "kubectl", False)
    assert obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 53, "name": "dns-tcp"}]


def test_conflict_with_another_applier_names_it_without_version():
    obj = server_side_apply(DEPLOYMENT, None, deployment(replicas=1), "helm", False)
    with pytest.raises(StatusError) as info:
        server_side_apply(DEPLOYMENT, obj, deployment(replicas=2), "kubectl", False)
    assert info.value.message == 'Apply failed with 1 conflict: conflict with "helm": .spec.replicas'
    obj = server_side_apply(DEPLOYMENT, None, _one("a", [{"containerPort": 53, "protocol": "UDP"}], "w"),
                            "helm", False)
    named = [{"containerPort": 53, "protocol": "UDP", "name": "x"}]
    obj = server_side_apply(DEPLOYMENT, obj, _one("b", named, "w"), "other", True)
    owned = entries(obj)[("other", "Apply", "")]["fieldsV1"]
    assert "f:image" in owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"w"}']
    with pytest.raises(StatusError) as info:
        server_side_apply(DEPLOYMENT, obj, _one("c", name="w"), "helm", False)
    assert info.value.details["causes"][0]["field"] == '.spec.template.spec.containers[name="w"].image'


def test_list_order_follows_structured_merge_diff():
    live = deployment(containers=[{"name": n, "image": n} for n in ("a", "b", "c")])
    track_update(DEPLOYMENT, None, live, "creator")
    applied = deployment(containers=[{"name": "x", "image": "x"}, {"name": "b", "image": "b"}])
    obj = server_side_apply(DEPLOYMENT, live, applied, "kubectl", False)
    # Live-only items keep their place; the new item lands before the shared item that follows it.
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a", "x", "b", "c"]


def test_finalizers_are_a_set():
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x"]}}
    track_update(CM, None, live, "creator")
    obj = server_side_apply(CM, live, {"metadata": {"name": "c", "finalizers": ["b/y"]}}, "kubectl", False)
    assert obj["metadata"]["finalizers"] == ["a/x", "b/y"]
    owned = entries(obj)[("kubectl", "Apply", "")]["fieldsV1"]
    assert owned == {"f:metadata": {"f:finalizers": {'v:"b/y"': {}}}}
    obj = server_side_apply(CM, obj, {"metadata": {"name": "c"}}, "kubectl", False)
    assert obj["metadata"]["finalizers"] == ["a/x"]


_names = st.sampled_from(["a", "b", "c", "d"])
_containers = st.lists(st.builds(lambda n, i: {"name": n, "image": i}, _names, st.sampled_from(["x", "y"])),
                       max_size=4, unique_by=lambda c: c["name"])
_labels = st.dictionaries(_names, st.sampled_from(["1", "2"]), max_size=3)


def _config(labels, containers, replicas):
    obj = deployment(replicas=replicas, labels=labels or None, containers=containers or None)
    if not containers:
        del obj["spec"]["template"]["spec"]["containers"]
    return obj


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.lists(st.tuples(_labels, _containers, st.one_of(st.none(), st.integers(0, 3))), min_size=1,
                max_size=4))
def test_a_sole_applier_gets_exactly_its_last_configuration(configs):
    obj = None
    for labels, containers, replicas in configs:
        obj = server_side_apply(DEPLOYMENT, obj, _config(labels, containers, replicas), "kubectl", False)
    labels, containers, replicas = configs[-1]
    assert obj["metadata"].get("labels", {}) == labels
    assert obj["spec"].get("replicas") == replicas
    assert obj["spec"]["template"]["spec"].get("containers", []) == containers
    # Re-applying the same configuration changes nothing.
    again = server_side_apply(DEPLOYMENT, obj, _config(labels, containers, replicas), "kubectl", False)
    assert again == obj
