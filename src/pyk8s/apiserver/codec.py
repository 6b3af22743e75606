"""Request body decoding (JSON, YAML with limits, Kubernetes protobuf, patch media types) and response
encoding (orjson).

YAML is loaded with PyYAML's safe constructors, one document, with caps on aliases, nesting and alias
expansion: a "billion laughs" document is refused on its shared node graph, before anything expands it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from pyk8s.api import errors, protobuf
from pyk8s.api.patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.openapi.schema import resource_definition
from pyk8s.apiserver.openapi.schema import unknown_fields as schema_unknown_fields

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)
MAX_YAML_ALIASES = 1000
MAX_YAML_EXPANSION = 10_000  # nodes aliases may add beyond twice the document's own
MAX_YAML_DEPTH = 100


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents with many aliases or deep nesting."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0
        self.nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"document uses more than {MAX_YAML_ALIASES} aliases")
        else:
            self.nodes += 1
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"document is nested deeper than {MAX_YAML_DEPTH} levels")
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: Node, limit: int) -> int:
    """How many nodes the document has once every alias is expanded, counted on the shared graph (each
    distinct node once, memoised), stopping as soon as it passes `limit` or meets a recursive alias."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise yaml.YAMLError("document has a recursive alias")
        busy.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        busy.discard(key)
        sizes[key] = total
        if total > limit:
            raise yaml.YAMLError(f"document expands to more than {limit} nodes through aliases")
        return total

    return size(root)


def load_yaml(body: bytes) -> Any:
    loader = _LimitedLoader(body)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # Aliases are shared in the node graph; expanding them (into JSON) is where a bomb explodes.
        _expanded_size(node, 2 * loader.nodes + MAX_YAML_EXPANSION)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
    except (ValueError, TypeError, RecursionError) as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
    finally:
        loader.dispose()


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"couldn't decode the request body as JSON: {e}") from None


def decode_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The object a create or update sends; 415 for a media type we do not read, 400 for bad bytes."""
    mt = media_type(content_type)
    if mt in ("", JSON, "*/*"):
        obj = load_json(body)
    elif mt in (YAML, "application/x-yaml", "text/yaml"):
        obj = load_yaml(body)
    elif mt == PROTOBUF:  # kubectl's typed clients (create configmap, create namespace …)
        obj = protobuf.decode(body)
    else:
        raise errors.unsupported_media_type(mt)
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be a JSON or YAML object")
    return obj


def decode_patch(body: bytes, content_type: str | None) -> tuple[str, Any]:
    """(patch type, decoded patch)."""
    mt = media_type(content_type)
    if mt not in PATCH_TYPES:
        raise errors.StatusError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}",
        )
    patch = load_yaml(body) if mt == APPLY_PATCH else load_json(body)
    if mt == JSON_PATCH:
        if not isinstance(patch, list):
            raise errors.bad_request("json patch must be a JSON array of operations")
    elif not isinstance(patch, dict):
        raise errors.bad_request(f"the body of a {mt} patch must be an object")
    return mt, patch


def encode(obj: Any, pretty: bool = False) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 if pretty else 0)


# Unknown-field detection. Until the OpenAPI schema provides full field lists, the top-level fields of
# every kind and the fields of ObjectMeta are checked; deeper fields are accepted as they are.
_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_COMMON = frozenset({"apiVersion", "kind", "metadata"})
_TOP_LEVEL: dict[str, frozenset[str]] = {
    "ConfigMap": frozenset({"data", "binaryData", "immutable"}),
    "Secret": frozenset({"data", "stringData", "type", "immutable"}),
    "ServiceAccount": frozenset({"secrets", "imagePullSecrets", "automountServiceAccountToken"}),
    "Endpoints": frozenset({"subsets"}),
    "Role": frozenset({"rules"}),
    "ClusterRole": frozenset({"rules", "aggregationRule"}),
    "RoleBinding": frozenset({"subjects", "roleRef"}),
    "ClusterRoleBinding": frozenset({"subjects", "roleRef"}),
    "EndpointSlice": frozenset({"addressType", "endpoints", "ports"}),
    "PriorityClass": frozenset({"value", "globalDefault", "description", "preemptionPolicy"}),
    "StorageClass": frozenset(
        {
            "provisioner",
            "parameters",
            "reclaimPolicy",
            "mountOptions",
            "allowVolumeExpansion",
            "volumeBindingMode",
            "allowedTopologies",
        }
    ),
    "RuntimeClass": frozenset({"handler", "overhead", "scheduling"}),
    "ControllerRevision": frozenset({"data", "revision"}),
    "PodTemplate": frozenset({"template"}),
    "Binding": frozenset({"target"}),
    "Eviction": frozenset({"deleteOptions"}),
}
_SPEC_STATUS = frozenset({"spec", "status"})
_EVENT_KINDS = frozenset({"Event"})


def unknown_fields(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """Field paths in `obj` that the kind does not define: from the OpenAPI schema where the kind has
    one, else the top level and metadata only."""
    if resource_definition(info) is not None:
        return schema_unknown_fields(info, obj)
    if info.kind in _EVENT_KINDS:
        return []
    allowed = _TOP_LEVEL.get(info.kind, _SPEC_STATUS)
    out = [k for k in obj if k not in _COMMON and k not in allowed]
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        out.extend(f"metadata.{k}" for k in meta if k not in _META_FIELDS)
    return out


FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


def check_unknown_fields(info: ResourceInfo, obj: dict[str, Any], mode: str) -> list[str]:
    """Apply `fieldValidation`: Strict raises 400; Warn and Ignore drop the unknown fields (Kubernetes'
    typed decoding never keeps them), and Warn returns the warnings to send."""
    unknown = unknown_fields(info, obj)
    if not unknown:
        return []
    msgs = [f'unknown field "{f}"' for f in unknown]
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(msgs))
    for path in unknown:
        _drop(obj, path)
    return msgs if mode == "Warn" else []


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _drop(obj: Any, path: str) -> None:
    """Remove the field at a reported path like `spec.containers[0].foo` (nothing if it cannot be found)."""
    steps: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _SEGMENT.finditer(path)
    ]
    cur = obj
    for step in steps[:-1]:
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return
        elif not isinstance(cur, dict) or step not in cur:
            return
        cur = cur[step]
    last = steps[-1] if steps else None
    if isinstance(cur, dict) and isinstance(last, str):
        cur.pop(last, None)
