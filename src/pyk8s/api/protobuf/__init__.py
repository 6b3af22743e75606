"""Kubernetes' protobuf wire format, decoded to the JSON-shaped dicts the rest of pyk8s uses.

kubectl sends protobuf bodies for built-in kinds (`kubectl create configmap`, `auth can-i`, `create
token` …): the magic "k8s\\0", then a runtime.Unknown whose typeMeta names the kind and whose `raw`
is the object. The schemas are Kubernetes' own generated.proto descriptors, extracted from kubectl by
`scripts/gen_protobuf.py`; the conversion follows Go's JSON encoding of the same types.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import orjson

from pyk8s.api.errors import bad_request

# google.protobuf loads with the first protobuf body: ~2 MB that a process never given one does not pay.
if TYPE_CHECKING:
    from google.protobuf import descriptor_pool, message
    from google.protobuf.descriptor import Descriptor, FieldDescriptor

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."

# Protobuf cannot tell a Go pointer set to zero from a plain field left at zero, and Go's JSON omits
# zero plain fields. These pointer fields are the ones whose zero or false means something other than
# "unset" (replicas: 0 is not the default 1, runAsUser: 0 is root, automountServiceAccountToken: false
# turns off a default of true …); every other zero scalar is dropped as Go's `omitempty` would.
_MEANINGFUL_ZERO = frozenset({
    "replicas", "parallelism", "completions", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
    "activeDeadlineSeconds", "startingDeadlineSeconds", "ttlSecondsAfterFinished",
    "successfulJobsHistoryLimit", "failedJobsHistoryLimit", "revisionHistoryLimit",
    "terminationGracePeriodSeconds", "gracePeriodSeconds", "tolerationSeconds", "expirationSeconds",
    "runAsUser", "runAsGroup", "fsGroup", "priority", "defaultMode", "mode", "minReadySeconds",
    "automountServiceAccountToken", "enableServiceLinks", "allowPrivilegeEscalation", "privileged",
    "runAsNonRoot", "readOnlyRootFilesystem", "hostUsers", "immutable", "suspend", "optional",
    "setHostnameAsFQDN", "shareProcessNamespace", "allowVolumeExpansion", "manualSelector",
})
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    from google.protobuf import descriptor_pb2, descriptor_pool

    data = files("pyk8s.api.protobuf").joinpath("descriptors.pb.gz").read_bytes()
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(gzip.decompress(data))
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:  # stored dependencies first
        pool.Add(fd)
    return pool


def _get(msg: message.Message, field: str) -> Any:
    """A field of a message class built at run time from a descriptor (no static attributes)."""
    return getattr(msg, field)


def _message_name(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    if group == "meta.k8s.io":
        return f"{_META}{kind}"
    # k8s.io/api packages are named for the first label of the group: rbac.authorization.k8s.io → rbac.
    return f"k8s.io.api.{group.split('.')[0] or 'core'}.{version}.{kind}"


def _parse(name: str, raw: bytes) -> message.Message:
    from google.protobuf import message, message_factory

    try:
        descriptor = _pool().FindMessageTypeByName(name)
    except KeyError:
        raise bad_request(f"no protobuf schema for {name}; send the object as JSON") from None
    msg = message_factory.GetMessageClass(descriptor)()
    try:
        msg.ParseFromString(raw)
    except message.DecodeError as e:
        raise bad_request(f"malformed protobuf body for {name}: {e}") from None
    return msg


def decode(body: bytes) -> dict[str, Any]:
    """The object in a Kubernetes protobuf body, as JSON-shaped dict with apiVersion and kind."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body does not start with the Kubernetes magic number")
    envelope = _parse(_UNKNOWN, body[len(MAGIC):])
    type_meta = _get(envelope, "typeMeta")
    api_version, kind = _get(type_meta, "apiVersion"), _get(type_meta, "kind")
    if not kind:
        raise bad_request("protobuf body names no kind")
    obj = _to_json(_parse(_message_name(api_version, kind), _get(envelope, "raw")))
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    out.update(obj or {})
    return out


def _time(msg: message.Message, micro: bool) -> str | None:
    if not msg.ListFields():
        return None  # Go's zero time is an empty message and JSON null
    seconds = _get(msg, "seconds") + _get(msg, "nanos") / 1e9
    ts = datetime.fromtimestamp(seconds, UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _raw_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return base64.b64encode(raw).decode()


def _duration(nanoseconds: int) -> str:
    """Go's time.Duration.String() for the whole seconds metav1.Duration carries in practice."""
    seconds = nanoseconds // 1_000_000_000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _special(msg: message.Message) -> tuple[bool, Any]:
    """Types whose JSON form is not their protobuf shape."""
    name = msg.DESCRIPTOR.full_name
    if name == f"{_META}Time":
        return True, _time(msg, micro=False)
    if name == f"{_META}MicroTime":
        return True, _time(msg, micro=True)
    if name == f"{_META}Duration":
        return True, _duration(_get(msg, "duration"))
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return True, _get(msg, "strVal") if _get(msg, "type") == 1 else _get(msg, "intVal")
    if name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return True, _get(msg, "string")
    if name == "k8s.io.apimachinery.pkg.runtime.RawExtension":
        return True, _raw_json(_get(msg, "raw"))
    if name == f"{_META}FieldsV1":
        return True, _raw_json(_get(msg, "Raw"))
    return False, None


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == field.TYPE_MESSAGE:
        return _to_json(value)
    if field.type == field.TYPE_BYTES:
        return base64.b64encode(value).decode()  # Go encodes []byte as base64
    return value


def _to_json(msg: message.Message) -> Any:
    special, value = _special(msg)
    if special:
        return value
    out: dict[str, Any] = {}
    for field, val in msg.ListFields():
        if field.is_repeated:
            entry: Descriptor | None = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                value_field = entry.fields_by_name["value"]
                out[field.json_name] = {k: _value(value_field, v) for k, v in val.items()}
            else:
                out[field.json_name] = [_value(field, v) for v in val]
            continue
        converted = _value(field, val)
        if converted is None or converted == "":
            continue
        if converted in (0, False) and field.json_name not in _MEANINGFUL_ZERO and not isinstance(
            converted, dict
        ):
            continue
        out[field.json_name] = converted
    return out
