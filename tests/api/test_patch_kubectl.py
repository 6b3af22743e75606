"""Differential tests: our patches against the real kubectl, whose `patch --local` runs apimachinery's own
strategic merge patch, JSON merge patch and JSON patch code on a local object."""

import json
import shutil
import subprocess

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from pyk8s.api.resource import ResourceInfo

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH")

INFOS = {
    "Pod": ResourceInfo("", "v1", "Pod", "pods", "pod", True),
    "Deployment": ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True),
    "Node": ResourceInfo("", "v1", "Node", "nodes", "node", False),
    "Service": ResourceInfo("", "v1", "Service", "services", "service", True),
}
TYPES = {"strategic": STRATEGIC_MERGE_PATCH, "merge": MERGE_PATCH, "json": JSON_PATCH}


def _pod(spec, **meta):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **meta}, "spec": spec}


def _c(name, **fields):
    return {"name": name, "image": name, **fields}


def _deploy(spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec}


CASES = [
    (_pod({"containers": [_c("a"), _c("b")]}), {"spec": {"containers": [_c("b", image="b2"), _c("c")]}}),
    (_pod({"containers": [_c("a"), _c("b"), _c("c")]}), {"spec": {"containers": [_c("c"), _c("a")]}}),
    (_pod({"containers": [_c("a"), _c("b")]}),
     {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
               "containers": [{"name": "a", "image": "x"}]}}),
    (_pod({"containers": [_c("a"), _c("b")]}),
     {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
               "containers": [_c("c")]}}),
    (_pod({"containers": [_c("a", env=[{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}])]}),
     {"spec": {"containers": [{"name": "a", "env": [{"name": "Z", "value": "3"},
                                                    {"name": "X", "$patch": "delete"}]}]}}),
    (_pod({"containers": [_c("a")]}, finalizers=["a", "b", "c"]),
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["d"]}}),
    (_pod({"containers": [_c("a")]}, finalizers=["a", "b", "c"]),
     {"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}),
    (_pod({"containers": [_c("a")], "volumes": [{"name": "v", "emptyDir": {}}]}),
     {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}),
    (_pod({"containers": [_c("a")], "tolerations": [{"key": "a"}]}),
     {"spec": {"tolerations": [{"key": "b"}]}}),
    (_pod({"containers": [_c("a")]}), {"spec": {"containers": [_c("z"), {"$patch": "replace"}]}}),
    (_pod({"containers": [_c("a")]}, labels={"a": "1"}),
     {"metadata": {"labels": {"$patch": "replace", "b": "2"}}}),
    (_pod({"containers": [_c("a")]}, labels={"a": "1"}), {"metadata": {"labels": {"$patch": "delete"}}}),
    (_pod({"containers": [_c("a")]}),
     {"spec": {"initContainers": [_c("i"), {"name": "j", "$patch": "delete"}]}}),
    (_pod({"containers": [_c("a", ports=[{"containerPort": 80}, {"containerPort": 81}])]}),
     {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 82},
                                                      {"containerPort": 80, "name": "http"}]}]}}),
    (_pod({"containers": [_c("a"), _c("b")]}),
     {"spec": {"containers": [{"name": "a", "$patch": "delete"}, _c("c")]}}),
    (_pod({"containers": [_c("a")], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a"]}]}),
     {"spec": {"hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}]}}),
    (_pod({"containers": [_c("a")]}), {"spec": {"containers": [{"name": "a", "image": None}]}}),
    (_pod({"containers": [_c("a")]}), {"spec": {"newthing": {"x": None, "y": 1}}}),
    (_deploy({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    (_deploy({"template": {"spec": {"containers": [_c("a")]}}}),
     {"spec": {"template": {"spec": {"containers": [_c("b")]}}}}),
    ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
      "spec": {"podCIDRs": ["a", "b"], "taints": [{"key": "a", "effect": "NoSchedule"}]}},
     {"spec": {"podCIDRs": ["c"], "taints": [{"key": "b", "effect": "NoSchedule"}]}}),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
      "spec": {"ports": [{"port": 80}, {"port": 443}]}},
     {"spec": {"ports": [{"port": 8080}]}}),
]

ERROR_CASES = [
    (_pod({"containers": [_c("a")]}), {"spec": {"containers": [{"image": "x"}]}}),
    (_pod({"containers": [_c("a")]}), {"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}),
    (_deploy({"strategy": {"type": "RollingUpdate"}}), {"spec": {"strategy": {"$retainKeys": ["type"],
                                                                            "rollingUpdate": {}}}}),
]


def _kubectl(obj, patch, patch_type, tmp_path):
    path = tmp_path / "obj.json"
    path.write_text(json.dumps(obj))
    proc = subprocess.run(["kubectl", "patch", "--local", "-f", str(path), "--type", patch_type,
                           "-p", json.dumps(patch), "-o", "json"], capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr.strip()


@pytest.mark.parametrize(("obj", "patch"), CASES)
def test_strategic_merge_patch_matches_kubectl(obj, patch, tmp_path):
    code, out, err = _kubectl(obj, patch, "strategic", tmp_path)
    assert code == 0, err
    assert apply_patch(INFOS[obj["kind"]], obj, patch, STRATEGIC_MERGE_PATCH) == json.loads(out)


@pytest.mark.parametrize(("obj", "patch"), ERROR_CASES)
def test_strategic_merge_patch_errors_match_kubectl(obj, patch, tmp_path):
    code, _, err = _kubectl(obj, patch, "strategic", tmp_path)
    assert code != 0
    with pytest.raises(StatusError) as info:
        apply_patch(INFOS[obj["kind"]], obj, patch, STRATEGIC_MERGE_PATCH)
    assert err == f"error: {info.value.message}"


@pytest.mark.parametrize(
    ("patch", "patch_type"),
    [
        ({"spec": {"containers": [_c("b")]}, "metadata": {"labels": {"x": None}, "annotations": {"a": "b"}}},
         "merge"),
        ([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
          {"op": "replace", "path": "/spec/containers/0/image", "value": "x"},
          {"op": "test", "path": "/spec/containers/0/image", "value": "x"}], "json"),
    ],
)
def test_merge_and_json_patch_match_kubectl(patch, patch_type, tmp_path):
    obj = _pod({"containers": [_c("a")]}, labels={"x": "1"})
    code, out, err = _kubectl(obj, patch, patch_type, tmp_path)
    assert code == 0, err
    assert apply_patch(INFOS["Pod"], obj, patch, TYPES[patch_type]) == json.loads(out)


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "test", "path": "/spec/containers/0/name", "value": "zz"}],
        [{"op": "bogus", "path": "/spec"}],
    ],
)
def test_json_patch_errors_match_kubectl(patch, tmp_path):
    obj = _pod({"containers": [_c("a")]})
    code, _, err = _kubectl(obj, patch, "json", tmp_path)
    assert code != 0
    with pytest.raises(StatusError) as info:
        apply_patch(INFOS["Pod"], obj, patch, JSON_PATCH)
    assert (info.value.code, err) == (422, f"error: {info.value.message}")
