"""Protobuf request bodies of the auth kinds, encoded here by hand from k8s.io/api's generated.proto
field numbers (kubectl's own bodies are exercised end to end in test_auth_kubectl.py)."""

from __future__ import annotations

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.apiserver.auth import protobuf


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def s(number: int, value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def v(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + s(1, s(1, api_version) + s(2, kind)) + s(2, raw) + s(3, "") + s(4, "")


def test_subject_access_review() -> None:
    spec = (
        s(1, s(1, "ns1") + s(2, "get") + s(5, "pods") + s(6, "log") + s(7, "web"))
        + s(3, "jane")
        + s(4, "dev")
        + s(4, "qa")
        + s(5, s(1, "scopes") + s(2, s(1, "a") + s(1, "b")))
        + s(6, "uid-1")
    )
    body = envelope("authorization.k8s.io/v1", "SubjectAccessReview", s(1, s(1, "x")) + s(2, spec))
    assert protobuf.decode(body) == {
        "kind": "SubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"name": "x"},
        "spec": {
            "resourceAttributes": {
                "namespace": "ns1",
                "verb": "get",
                "resource": "pods",
                "subresource": "log",
                "name": "web",
            },
            "user": "jane",
            "groups": ["dev", "qa"],
            "extra": {"scopes": ["a", "b"]},
            "uid": "uid-1",
        },
    }


def test_token_request_with_int64_and_bound_object() -> None:
    spec = s(1, "vault") + s(3, s(1, "Pod") + s(2, "v1") + s(3, "web")) + v(4, 7200)
    body = envelope("authentication.k8s.io/v1", "TokenRequest", s(1, b"") + s(2, spec))
    obj = protobuf.decode(body)
    assert obj["spec"] == {
        "audiences": ["vault"],
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"},
        "expirationSeconds": 7200,
    }


def test_unknown_fields_are_skipped() -> None:
    # Field 99 (a string) and field 98 (a varint) do not exist in the schema.
    spec = s(1, s(2, "list") + s(5, "pods") + s(99, "future")) + v(98, 5)
    body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", s(2, spec))
    assert protobuf.decode(body)["spec"] == {"resourceAttributes": {"verb": "list", "resource": "pods"}}


def test_other_kinds_are_415_and_garbage_is_400() -> None:
    with pytest.raises(StatusError) as e:
        protobuf.decode(envelope("v1", "Pod", b""))
    assert e.value.code == 415
    with pytest.raises(StatusError) as e:
        protobuf.decode(protobuf.MAGIC + b"\x0a\xff")
    assert e.value.code == 400
    with pytest.raises(StatusError) as e:
        protobuf.decode(b"{}")
    assert e.value.code == 400
