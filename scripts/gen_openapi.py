"""Generate pyk8s' OpenAPI definitions from the official `kubernetes` Python client's models.

Run at development time (the runtime never imports `kubernetes`):

    .venv/bin/python scripts/gen_openapi.py

The client's pydantic models carry each field's JSON name, type, description and whether it is required;
what they lose (the Go package of a type, Quantity, IntOrString, Time vs MicroTime, int32 vs int64) is
restored here from the names Kubernetes uses. The output is a compact, neutral definitions map
(`{"$ref": "<definition name>"}` references) that `pyk8s.apiserver.openapi` renders as v2 and v3.
"""

from __future__ import annotations

import datetime
import gzip
import re
import sys
import types
import typing
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from kubernetes.client import models
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from pyk8s.api import catalog  # noqa: E402

OUT = ROOT / "src/pyk8s/apiserver/openapi/definitions.json.gz"

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# Types of apimachinery's meta/v1, whatever kind first refers to them.
META_TYPES = {
    "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "ManagedFieldsEntry",
    "OwnerReference", "Status", "StatusDetails", "StatusCause", "DeleteOptions", "Preconditions", "Condition",
    "APIResource", "APIResourceList", "APIGroup", "APIGroupList", "APIVersions", "GroupVersionForDiscovery",
    "ServerAddressByClientCIDR", "WatchEvent", "FieldSelectorRequirement",
}

# Go package of each API group's types.
PACKAGES = {
    "": "io.k8s.api.core.v1", "apps": "io.k8s.api.apps.v1", "batch": "io.k8s.api.batch.v1",
    "coordination.k8s.io": "io.k8s.api.coordination.v1", "discovery.k8s.io": "io.k8s.api.discovery.v1",
    "events.k8s.io": "io.k8s.api.events.v1", "rbac.authorization.k8s.io": "io.k8s.api.rbac.v1",
    "node.k8s.io": "io.k8s.api.node.v1", "storage.k8s.io": "io.k8s.api.storage.v1",
    "scheduling.k8s.io": "io.k8s.api.scheduling.v1", "policy": "io.k8s.api.policy.v1",
    "authorization.k8s.io": "io.k8s.api.authorization.v1",
    "authentication.k8s.io": "io.k8s.api.authentication.v1", "autoscaling": "io.k8s.api.autoscaling.v1",
}

# Maps of resource quantities (the client types them as plain strings): (definition kind, JSON field).
QUANTITY_MAPS = {
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("NodeStatus", "capacity"), ("NodeStatus", "allocatable"), ("PodSpec", "overhead"),
    ("ResourceQuotaSpec", "hard"), ("ResourceQuotaStatus", "hard"), ("ResourceQuotaStatus", "used"),
    ("LimitRangeItem", "max"), ("LimitRangeItem", "min"), ("LimitRangeItem", "default"),
    ("LimitRangeItem", "defaultRequest"), ("LimitRangeItem", "maxLimitRequestRatio"),
    ("PersistentVolumeSpec", "capacity"), ("PersistentVolumeClaimStatus", "capacity"),
    ("PersistentVolumeClaimStatus", "allocatedResources"), ("ContainerStatus", "allocatedResources"),
    ("Overhead", "podFixed"),
}
QUANTITY_FIELDS = {("EmptyDirVolumeSource", "sizeLimit"), ("CSIStorageCapacity", "capacity"),
                   ("CSIStorageCapacity", "maximumVolumeSize")}
MICRO_TIME_FIELDS = {("Event", "eventTime"), ("EventSeries", "lastObservedTime"),
                     ("LeaseSpec", "acquireTime"), ("LeaseSpec", "renewTime")}
# Fields Kubernetes declares as RawExtension (the client says `object`).
RAW_EXTENSION_FIELDS = {("ControllerRevision", "data")}
INT64_NAMES = re.compile(r"(Seconds|[gG]eneration|^runAs(User|Group)|^fsGroup|^supplementalGroups|"
                         r"^expirationSeconds|^count$|^limit$|^remainingItemCount$|^revision$)")

_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")


def short_name(cls: type[BaseModel]) -> str:
    return _PREFIX.sub("", cls.__name__)


def model_class(group: str, kind: str) -> type[BaseModel]:
    prefix = (group.split(".")[0] or "core").capitalize()
    for name in (f"{prefix}V1{kind}", f"V1{kind}"):
        cls = getattr(models, name, None)
        if cls is not None:
            return typing.cast(type[BaseModel], cls)
    raise LookupError(f"no client model for {group}/{kind}")


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return typing.Union[tuple(args)]  # noqa: UP007 - rebuilt from runtime args
    return tp


def _base(tp: Any) -> Any:
    """The type under Optional[...] and Annotated[..., Strict()] wrappers."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        stripped = _strip_optional(tp)
        if stripped is tp or stripped == tp:
            return tp
        tp = stripped


class Generator:
    def __init__(self) -> None:
        self.names: dict[type[BaseModel], str] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.queue: deque[tuple[type[BaseModel], str]] = deque()

    def name_of(self, cls: type[BaseModel], package: str) -> str:
        if cls not in self.names:
            short = short_name(cls)
            self.names[cls] = f"{META}.{short}" if short in META_TYPES else f"{package}.{short}"
            self.queue.append((cls, package))
        return self.names[cls]

    def schema(self, tp: Any, package: str, owner: str, field: str) -> dict[str, Any]:
        tp = _base(tp)
        origin = typing.get_origin(tp)
        if (owner, field) in RAW_EXTENSION_FIELDS:
            return {"$ref": RAW_EXTENSION}
        if origin in (typing.Union, types.UnionType):
            if bytes in {_base(a) for a in typing.get_args(tp)}:
                return {"type": "string", "format": "byte"}
            return {"$ref": INT_OR_STRING}
        if tp is Any:
            return {"type": "object"}
        if origin in (list, typing.List):  # noqa: UP006
            return {"type": "array", "items": self.schema(typing.get_args(tp)[0], package, owner, "")}
        if origin in (dict, typing.Dict):  # noqa: UP006
            value = typing.get_args(tp)[1]
            if value is Any:  # free-form JSON (FieldsV1 …)
                return {"type": "object"}
            if (owner, field) in QUANTITY_MAPS:
                return {"type": "object", "additionalProperties": {"$ref": QUANTITY}}
            return {"type": "object", "additionalProperties": self.schema(value, package, owner, "")}
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return {"$ref": self.name_of(tp, package)}
        if tp is datetime.datetime:
            return {"$ref": MICRO_TIME if (owner, field) in MICRO_TIME_FIELDS else TIME}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer", "format": "int64" if INT64_NAMES.search(field) else "int32"}
        if tp is float:
            return {"type": "number", "format": "double"}
        if tp is str:
            if (owner, field) in QUANTITY_FIELDS:
                return {"$ref": QUANTITY}
            return {"type": "string"}
        return {"type": "object"}

    def build(self, cls: type[BaseModel], package: str) -> None:
        name = self.names[cls]
        owner = short_name(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for attr, info in cls.model_fields.items():
            field = info.serialization_alias or info.alias or attr
            prop = self.schema(info.annotation, package, owner, field)
            if info.description:
                prop["description"] = info.description
            props[field] = prop
            if info.is_required():
                required.append(field)
        definition: dict[str, Any] = {"type": "object", "properties": props}
        doc = (cls.__doc__ or "").split("Attributes:")[0].strip()
        if doc and "NOTE: This class is auto generated" not in doc:
            definition["description"] = " ".join(doc.split())
        if required:
            definition["required"] = required
        self.definitions[name] = definition

    def drain(self) -> None:
        while self.queue:
            self.build(*self.queue.popleft())


def _scalar_definitions() -> dict[str, dict[str, Any]]:
    return {
        TIME: {"type": "string", "format": "date-time",
               "description": "Time is a wrapper around time.Time which supports correct marshaling to "
                              "YAML and JSON.  Wrappers are provided for many of the factory methods that "
                              "the time package offers."},
        MICRO_TIME: {"type": "string", "format": "date-time",
                     "description": "MicroTime is version of Time with microsecond level precision."},
        INT_OR_STRING: {"type": "string", "format": "int-or-string",
                        "description": "IntOrString is a type that can hold an int32 or a string.  When used "
                                       "in JSON or YAML marshalling and unmarshalling, it produces or "
                                       "consumes the inner type.  This allows you to have, for example, a "
                                       "JSON field that can accept a name or number."},
        QUANTITY: {"type": "string",
                   "description": "Quantity is a fixed-point representation of a number. It provides "
                                  "convenient marshaling/unmarshaling in JSON and YAML, in addition to "
                                  "String() and "
                                  "AsInt64() accessors.\n\nThe serialization format is:\n\n"
                                  "<quantity> ::= <signedNumber><suffix>\n\n"
                                  "(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)"},
        RAW_EXTENSION: {"type": "object",
                        "description": "RawExtension is used to hold extensions in external versions."},
    }


def generate() -> dict[str, Any]:
    gen = Generator()
    kinds: dict[str, dict[str, str]] = {}
    roots: list[tuple[str, str, str]] = [(i.group, i.version, i.kind) for i in catalog.CATALOG]
    roots += [("autoscaling", "v1", "Scale"), ("policy", "v1", "Eviction"),
              ("authentication.k8s.io", "v1", "TokenRequest"), ("", "v1", "Status"),
              ("", "v1", "DeleteOptions")]
    # Core first, so that the types core kinds share with other groups (PodTemplateSpec …) are core's.
    roots.sort(key=lambda r: catalog.GROUP_ORDER.index(r[0]) if r[0] in catalog.GROUP_ORDER else 99)
    for group, version, kind in roots:
        package = PACKAGES[group]
        for k in (kind, f"{kind}List") if kind not in ("Status", "DeleteOptions") else (kind,):
            try:
                cls = model_class(group, k)
            except LookupError:
                continue  # create-only kinds have no List
            name = gen.name_of(cls, package)
            if k in ("Status", "DeleteOptions"):
                kinds[name] = {"group": "", "version": "v1", "kind": k}
            elif k not in ("Scale", "Eviction", "TokenRequest") or name not in kinds:
                kinds[name] = {"group": group, "version": version, "kind": k}
        gen.drain()
    definitions = {**gen.definitions, **_scalar_definitions()}
    for name, gvk in kinds.items():
        definitions[name]["x-kubernetes-group-version-kind"] = [gvk]
    _add_standard_descriptions(definitions)
    _add_patch_meta(definitions)
    return dict(sorted(definitions.items()))


_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"


def _add_standard_descriptions(definitions: dict[str, dict[str, Any]]) -> None:
    """The client drops the descriptions of fields that refer to another type; restore the standard ones
    Kubernetes gives metadata, spec and status (kubectl explain prints them)."""
    for name, definition in definitions.items():
        kind = name.rsplit(".", 1)[-1]
        top_level = "x-kubernetes-group-version-kind" in definition
        for field, prop in definition.get("properties", {}).items():
            if "description" in prop:
                continue
            ref = prop.get("$ref", "")
            if field == "metadata" and ref == f"{META}.ObjectMeta":
                prop["description"] = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
            elif field == "metadata" and ref == f"{META}.ListMeta":
                prop["description"] = f"Standard list metadata. More info: {_CONVENTIONS}#types-kinds"
            elif field == "spec" and top_level:
                prop["description"] = (f"Specification of the desired behavior of the {kind}. More info: "
                                       f"{_CONVENTIONS}#spec-and-status")
            elif field == "status" and top_level:
                prop["description"] = (f"Most recently observed status of the {kind}. This data may not "
                                       f"be up to date. Populated by the system. Read-only. More info: "
                                       f"{_CONVENTIONS}#spec-and-status")


def _add_patch_meta(definitions: dict[str, dict[str, Any]]) -> None:
    """Strategic-merge metadata from pyk8s.api.patch.meta, the table the patcher itself uses."""
    from pyk8s.api.patch.meta import PATCH_META

    for name, fields in PATCH_META.items():
        props = definitions.get(name, {}).get("properties", {})
        for field, patch in fields.items():
            prop = props.get(field)
            if prop is None:
                continue
            if patch.strategy:
                prop["x-kubernetes-patch-strategy"] = patch.strategy
            if patch.merge_key:
                prop["x-kubernetes-patch-merge-key"] = patch.merge_key
                prop["x-kubernetes-list-type"] = "map"
                prop["x-kubernetes-list-map-keys"] = [patch.merge_key]
            elif patch.merges and prop.get("type") == "array":
                prop["x-kubernetes-list-type"] = "set"


def main() -> None:
    definitions = generate()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical across runs, so git sees only real changes.
    OUT.write_bytes(gzip.compress(orjson.dumps(definitions, option=orjson.OPT_SORT_KEYS), 9, mtime=0))
    print(f"{len(definitions)} definitions → {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
