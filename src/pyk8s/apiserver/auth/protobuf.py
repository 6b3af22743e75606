"""Decoding of the Kubernetes protobuf request bodies that kubectl sends for the auth kinds.

kubectl (1.32) posts TokenRequest (`create token`), SelfSubjectAccessReview (`auth can-i`),
SelfSubjectRulesReview (`auth can-i --list`) and SelfSubjectReview (`auth whoami`) as
`application/vnd.kubernetes.protobuf` with no JSON fallback. The body is the "k8s\\0" magic, then a
runtime.Unknown {typeMeta, raw} whose `raw` is the object in the field numbers of k8s.io/api's
generated.proto. Only the fields these review kinds carry are decoded; unknown fields are skipped.
Responses can stay JSON: clients accept JSON whatever they sent."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import bad_request, unsupported_media_type

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# field number → (JSON name, type): type is "string", "int64", "bool", a nested schema, or
# ("repeated", type) / ("map", value type).
Schema = dict[int, tuple[str, Any]]

_TYPE_META: Schema = {1: ("apiVersion", "string"), 2: ("kind", "string")}
_UNKNOWN: Schema = {
    1: ("typeMeta", _TYPE_META),
    2: ("raw", "bytes"),
    3: ("contentEncoding", "string"),
    4: ("contentType", "string"),
}
_OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
}
_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "string"), 2: ("verb", "string")}
_EXTRA_VALUE: Schema = {1: ("items", ("repeated", "string"))}
_SAR_SPEC: Schema = {
    1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
    3: ("user", "string"),
    4: ("groups", ("repeated", "string")),
    5: ("extra", ("map", _EXTRA_VALUE)),
    6: ("uid", "string"),
}
_SSAR_SPEC: Schema = {
    1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
}
_SSRR_SPEC: Schema = {1: ("namespace", "string")}
_BOUND_OBJECT: Schema = {
    1: ("kind", "string"),
    2: ("apiVersion", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
}
_TOKEN_REQUEST_SPEC: Schema = {
    1: ("audiences", ("repeated", "string")),
    3: ("boundObjectRef", _BOUND_OBJECT),
    4: ("expirationSeconds", "int64"),
}
_TOKEN_REVIEW_SPEC: Schema = {1: ("token", "string"), 2: ("audiences", ("repeated", "string"))}


def _object(spec: Schema | None) -> Schema:
    out: Schema = {1: ("metadata", _OBJECT_META)}
    if spec is not None:
        out[2] = ("spec", spec)
    return out


KINDS: dict[tuple[str, str], Schema] = {
    ("authorization.k8s.io/v1", "SubjectAccessReview"): _object(_SAR_SPEC),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): _object(_SAR_SPEC),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _object(_SSAR_SPEC),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): _object(_SSRR_SPEC),
    ("authentication.k8s.io/v1", "TokenRequest"): _object(_TOKEN_REQUEST_SPEC),
    ("authentication.k8s.io/v1", "TokenReview"): _object(_TOKEN_REVIEW_SPEC),
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _object(None),
}

_Value = int | bytes


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, _Value]]:
    """(field number, value) pairs: varints as int, length-delimited as bytes; fixed-width skipped."""
    out: list[tuple[int, _Value]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != len(buf):
        raise ValueError("truncated message")
    return out


def _scalar(kind: str, value: _Value) -> Any:
    if kind == "string":
        if not isinstance(value, bytes):
            raise ValueError("expected a string")
        return value.decode()
    if kind == "bytes":
        return value
    if not isinstance(value, int):
        raise ValueError("expected a number")
    if kind == "bool":
        return bool(value)
    return value - (1 << 64) if value >= 1 << 63 else value  # int64 two's complement


def _decode(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == "repeated":
            out.setdefault(name, []).append(_convert(kind[1], value))
        elif isinstance(kind, tuple) and kind[0] == "map":
            if not isinstance(value, bytes):
                raise ValueError("expected a map entry")
            entry = dict(_fields(value))
            key = _scalar("string", entry.get(1, b""))
            item = _convert(kind[1], entry.get(2, b""))
            # The only map of messages is SubjectAccessReview extra: ExtraValue{items} is a list in JSON.
            out.setdefault(name, {})[key] = item.get("items", []) if isinstance(kind[1], dict) else item
        else:
            out[name] = _convert(kind, value)
    return out


def _convert(kind: Any, value: _Value) -> Any:
    if isinstance(kind, dict):
        if not isinstance(value, bytes):
            raise ValueError("expected a message")
        return _decode(value, kind)
    return _scalar(kind, value)


def decode(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object of a protobuf-encoded auth request body; 415 for any other kind, 400 for
    bytes that do not parse."""
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body does not start with the Kubernetes magic prefix")
    try:
        unknown = _decode(body[len(MAGIC) :], _UNKNOWN)
        meta = unknown.get("typeMeta", {})
        api_version, kind = meta.get("apiVersion", ""), meta.get("kind", "")
        schema = KINDS.get((api_version, kind))
        if schema is None:
            raise unsupported_media_type(CONTENT_TYPE)
        obj = _decode(unknown.get("raw", b""), schema)
    except ValueError as e:
        raise bad_request(f"unable to decode the protobuf body: {e}") from e
    return {"kind": kind, "apiVersion": api_version, **obj}


def is_protobuf(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == CONTENT_TYPE
