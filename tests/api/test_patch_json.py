import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.patch import JSON_PATCH, apply_patch
from pyk8s.api.resource import ResourceInfo

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)
LIVE = {"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}}


def test_operations_apply_without_mutating():
    patch = [{"op": "add", "path": "/data/n", "value": "1"},
             {"op": "remove", "path": "/metadata/labels/a"},
             {"op": "replace", "path": "/data/k", "value": "w"},
             {"op": "test", "path": "/data/n", "value": "1"},
             {"op": "copy", "from": "/data/k", "path": "/data/c"},
             {"op": "move", "from": "/data/c", "path": "/data/m"}]
    out = apply_patch(CM, LIVE, patch, JSON_PATCH)
    assert out == {"metadata": {"name": "c", "labels": {}}, "data": {"k": "w", "n": "1", "m": "w"}}
    assert LIVE["data"] == {"k": "v"}


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ([{"op": "test", "path": "/data/k", "value": "other"}], 422),
        ([{"op": "remove", "path": "/data/missing"}], 422),
        ([{"op": "replace", "path": "/nope/deeper", "value": 1}], 422),
        ([{"op": "frobnicate", "path": "/data"}], 422),
        ([{"path": "/data"}], 422),
        ([{"op": "add", "value": 1}], 422),
        ({"op": "add"}, 400),
        (["add"], 400),
    ],
)
def test_failures_have_kubernetes_codes(patch, code):
    with pytest.raises(StatusError) as info:
        apply_patch(CM, LIVE, patch, JSON_PATCH)
    assert info.value.code == code
    assert info.value.message


def test_too_many_operations_is_413():
    with pytest.raises(StatusError) as info:
        apply_patch(CM, LIVE, [{"op": "test", "path": "/data/k", "value": "v"}] * 10001, JSON_PATCH)
    assert info.value.code == 413


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ([{"op": "test", "path": "/data/k", "value": "other"}], "testing value /data/k failed: test failed"),
        ([{"op": "bogus", "path": "/data"}], "Unexpected kind: bogus"),
    ],
)
def test_messages_name_the_failing_operation_as_kubernetes(patch, message):
    with pytest.raises(StatusError) as info:
        apply_patch(CM, LIVE, patch, JSON_PATCH)
    assert info.value.message == message
    with pytest.raises(StatusError) as info:
        apply_patch(CM, LIVE, [{"op": "remove", "path": "/data/missing"}], JSON_PATCH)
    assert info.value.message.startswith("error in remove for path: '/data/missing': ")
