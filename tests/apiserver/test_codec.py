"""Body decoding: JSON, YAML with alias and depth limits, patch media types, unknown fields."""

from __future__ import annotations

import copy
import time
import tracemalloc

import pytest

from pyk8s.api.catalog import lookup
from pyk8s.api.errors import StatusError
from pyk8s.apiserver import codec

BOMB = b"""a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_json_and_yaml_objects() -> None:
    assert codec.decode_object(b'{"kind": "Pod"}', "application/json") == {"kind": "Pod"}
    assert codec.decode_object(b'{"kind": "Pod"}', None) == {"kind": "Pod"}
    assert codec.decode_object(b"kind: Pod\nmetadata:\n  name: x\n", "application/yaml; charset=utf-8") == {
        "kind": "Pod",
        "metadata": {"name": "x"},
    }


def test_a_few_aliases_are_fine() -> None:
    assert codec.decode_object(b"a: &x {k: v}\nb: *x\n", "application/yaml") == {
        "a": {"k": "v"},
        "b": {"k": "v"},
    }


def test_alias_bomb_is_refused_fast_with_bounded_memory() -> None:
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(StatusError) as e:
        codec.decode_object(BOMB, "application/yaml")
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert e.value.code == 400
    assert "alias" in e.value.message
    assert elapsed < 5  # generous: the refusal happens after ~100 alias events
    assert peak < 20 * 1024 * 1024


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(StatusError) as e:
        codec.decode_object(b"a: " + b"[" * 500 + b"]" * 500, "application/yaml")
    assert e.value.code == 400


@pytest.mark.parametrize("body", [b"{", b"[1,2]", b"\xff\xfe", b'"string"', b"null"])
def test_malformed_json_is_400(body: bytes) -> None:
    with pytest.raises(StatusError) as e:
        codec.decode_object(body, "application/json")
    assert e.value.code == 400


def test_malformed_yaml_is_400() -> None:
    with pytest.raises(StatusError) as e:
        codec.decode_object(b"a: [unclosed\n", "application/yaml")
    assert e.value.code == 400
    with pytest.raises(StatusError) as e:
        codec.decode_object(b"a: 1\n---\nb: 2\n", "application/yaml")
    assert e.value.code == 400


@pytest.mark.parametrize("ct", ["application/cbor", "text/plain", "application/xml"])
def test_unsupported_media_types_are_415(ct: str) -> None:
    with pytest.raises(StatusError) as e:
        codec.decode_object(b"{}", ct)
    assert e.value.code == 415
    assert e.value.reason == "UnsupportedMediaType"


def test_patch_types() -> None:
    assert (
        codec.decode_patch(b'[{"op":"remove","path":"/a"}]', "application/json-patch+json")[0]
        == "application/json-patch+json"
    )
    assert codec.decode_patch(b'{"a":1}', "application/merge-patch+json") == (
        "application/merge-patch+json",
        {"a": 1},
    )
    assert codec.decode_patch(b"a: 1\n", "application/apply-patch+yaml") == (
        "application/apply-patch+yaml",
        {"a": 1},
    )
    with pytest.raises(StatusError) as e:
        codec.decode_patch(b'{"a":1}', "application/json")
    assert e.value.code == 415
    with pytest.raises(StatusError) as e:
        codec.decode_patch(b'{"a":1}', "application/json-patch+json")
    assert e.value.code == 400


def test_unknown_fields_per_mode() -> None:
    cm = lookup("", "v1", "configmaps")
    assert cm is not None
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "bogus": 1},
        "data": {},
        "foo": 1,
    }
    assert codec.check_unknown_fields(cm, copy.deepcopy(obj), "Ignore") == []
    assert sorted(codec.check_unknown_fields(cm, copy.deepcopy(obj), "Warn")) == [
        'unknown field "foo"',
        'unknown field "metadata.bogus"',
    ]
    with pytest.raises(StatusError) as e:
        codec.check_unknown_fields(cm, obj, "Strict")
    assert e.value.code == 400
    assert e.value.message.startswith("strict decoding error: unknown field ")
    assert 'unknown field "foo"' in e.value.message and 'unknown field "metadata.bogus"' in e.value.message


def test_pretty_encoding() -> None:
    assert codec.encode({"a": 1}) == b'{"a":1}'
    assert codec.encode({"a": 1}, pretty=True) == b'{\n  "a": 1\n}'


def test_warn_and_ignore_drop_unknown_fields_deep_in_the_object() -> None:
    pods = lookup("", "v1", "pods")
    assert pods is not None
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "bogus": True,
        "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "Always"}]},
    }
    assert sorted(codec.check_unknown_fields(pods, obj, "Warn")) == [
        'unknown field "bogus"',
        'unknown field "spec.containers[0].imagePullPolcy"',
    ]
    assert obj == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    obj["spec"]["extra"] = 1
    assert codec.check_unknown_fields(pods, obj, "Ignore") == []
    assert "extra" not in obj["spec"]
