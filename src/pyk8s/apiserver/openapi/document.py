"""The OpenAPI documents: Swagger 2.0 for /openapi/v2 and OpenAPI 3.0 per group-version for /openapi/v3.

Paths follow Kubernetes' route conventions with the extensions clients read: `x-kubernetes-action` and
`x-kubernetes-group-version-kind` on every operation, and `fieldValidation` among the query parameters of
POST, PUT and PATCH — kubectl looks for it on a kind's PATCH operation to decide that the server validates
fields itself (client-go's QueryParamVerifierV3).
"""

from __future__ import annotations

import copy
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.discovery import GIT_VERSION
from pyk8s.apiserver.openapi import schema as schemas

Obj = dict[str, Any]
META = schemas.META

_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")
_PRODUCES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def _param(name: str, where: str, description: str, typ: str = "string", required: bool = False) -> Obj:
    p: Obj = {"name": name, "in": where, "description": description, "type": typ, "uniqueItems": True}
    if required:
        p["required"] = True
    return p


_PRETTY = _param("pretty", "query", "If 'true', then the output is pretty printed.")
_DRY_RUN = _param("dryRun", "query", "When present, indicates that modifications should not be persisted. "
                  "Valid values are: - All: all dry run stages will be processed")
_FIELD_MANAGER = _param("fieldManager", "query", "fieldManager is a name associated with the actor or entity "
                        "that is making these changes.")
_FIELD_VALIDATION = _param(
    "fieldValidation", "query",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields "
    "that are silently dropped from the object, and will ignore all but the last duplicate field that the "
    "decoder encounters. - Warn: This will send a warning via the standard warning response header for each "
    "unknown field that is dropped from the object, and for each duplicate field that is encountered. - "
    "Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from "
    "the object, or if any duplicate fields are present. The error returned from the server will contain all "
    "unknown and duplicate fields encountered.")
_FORCE = _param("force", "query", "Force is going to \"force\" Apply requests. It means user will re-acquire "
                "conflicting fields owned by other people.", "boolean")
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "query",
           "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
    _param("continue", "query", "The continue option should be set when retrieving more results from the "
           "server."),
    _param("fieldSelector", "query", "A selector to restrict the list of returned objects by their fields. "
           "Defaults to everything."),
    _param("labelSelector", "query", "A selector to restrict the list of returned objects by their labels. "
           "Defaults to everything."),
    _param("limit", "query", "limit is a maximum number of responses to return for a list call.", "integer"),
    _param("resourceVersion", "query",
           "resourceVersion sets a constraint on what resource versions a request may be served from."),
    _param("resourceVersionMatch", "query", "resourceVersionMatch determines how resourceVersion is applied "
           "to list calls."),
    _param("sendInitialEvents", "query", "`sendInitialEvents=true` may be set together with `watch=true`.",
           "boolean"),
    _param("timeoutSeconds", "query", "Timeout for the list/watch call.", "integer"),
    _param("watch", "query", "Watch for changes to the described resources and return them as a stream of "
           "add, update, and remove notifications.", "boolean"),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _param("gracePeriodSeconds", "query", "The duration in seconds before the object should be deleted.",
           "integer"),
    _param("propagationPolicy", "query", "Whether and how garbage collection will be performed."),
]


def _camel_group(group: str) -> str:
    return "".join(part.capitalize() for part in group.removesuffix(".k8s.io").split(".")) or "Core"


class _Builder:
    def __init__(self) -> None:
        self.paths: dict[str, Obj] = {}

    def op(self, path: str, method: str, action: str, op_id: str, gvk: Obj | None, *, params: list[Obj],
           body: str | None = None, response: str | None = None, patch: bool = False,
           path_params: list[Obj]) -> None:
        item = self.paths.setdefault(path, {"parameters": [*path_params, _PRETTY]})
        operation: Obj = {"description": f"{action} {op_id}", "operationId": op_id, "parameters": params,
                          "x-kubernetes-action": action, "_body": body, "_response": response,
                          "_patch": patch}
        if gvk is not None:
            operation["x-kubernetes-group-version-kind"] = gvk
        item[method] = operation


def _resource_paths(b: _Builder, info: ResourceInfo) -> None:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    name_p = _param("name", "path", f"name of the {info.kind}", required=True)
    ns_p = _param("namespace", "path", "object name and auth scope, such as for teams and projects",
                  required=True)
    scope = [ns_p] if info.namespaced else []
    coll = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    item = f"{coll}/{{name}}"
    prefix = _camel_group(info.group) + info.version.capitalize() + ("Namespaced" if info.namespaced else "")
    gvk: Obj = {"group": info.group, "version": info.version, "kind": info.kind}
    own = schemas.resource_definition(info)
    lst = schemas.definition_name(info.group, info.version, info.list_kind)
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    verbs = set(info.verbs)
    if "list" in verbs:
        b.op(coll, "get", "list", f"list{prefix}{info.kind}", gvk, params=_LIST_PARAMS, response=lst,
             path_params=scope)
        if info.namespaced:
            b.op(f"{base}/{info.plural}", "get", "list", f"list{prefix.removesuffix('Namespaced')}{info.kind}"
                 "ForAllNamespaces", gvk, params=_LIST_PARAMS, response=lst, path_params=[])
    if "create" in verbs:
        b.op(coll, "post", "post", f"create{prefix}{info.kind}", gvk, params=write, body=own, response=own,
             path_params=scope)
    if "deletecollection" in verbs:
        b.op(coll, "delete", "deletecollection", f"deletecollection{prefix}{info.kind}", gvk,
             params=_DELETE_PARAMS + _LIST_PARAMS, body=f"{META}.DeleteOptions", response=f"{META}.Status",
             path_params=scope)
    item_scope = [name_p, *scope]
    if "get" in verbs:
        b.op(item, "get", "get", f"read{prefix}{info.kind}", gvk, params=[], response=own,
             path_params=item_scope)
    if "update" in verbs:
        b.op(item, "put", "put", f"replace{prefix}{info.kind}", gvk, params=write, body=own, response=own,
             path_params=item_scope)
    if "patch" in verbs:
        b.op(item, "patch", "patch", f"patch{prefix}{info.kind}", gvk, params=[*write, _FORCE],
             body=f"{META}.Patch", response=own, patch=True, path_params=item_scope)
    if "delete" in verbs:
        b.op(item, "delete", "delete", f"delete{prefix}{info.kind}", gvk, params=_DELETE_PARAMS,
             body=f"{META}.DeleteOptions", response=own, path_params=item_scope)
    for sub, kind in info.subresources.items():
        sub_group, sub_version = catalog.subresource_group_version(info, sub)
        sub_def = schemas.definition_name(sub_group, sub_version, kind)
        if sub_def is None:
            continue  # connect subresources (log, exec, proxy …) carry no schema
        sub_gvk: Obj = {"group": sub_group, "version": sub_version, "kind": kind}
        path, label = f"{item}/{sub}", info.kind + sub.capitalize()
        sub_verbs = catalog.SUBRESOURCE_VERBS.get(sub, ())
        if "get" in sub_verbs:
            b.op(path, "get", "get", f"read{prefix}{label}", sub_gvk, params=[], response=sub_def,
                 path_params=item_scope)
        if "update" in sub_verbs:
            b.op(path, "put", "put", f"replace{prefix}{label}", sub_gvk, params=write, body=sub_def,
                 response=sub_def, path_params=item_scope)
        if "patch" in sub_verbs:
            b.op(path, "patch", "patch", f"patch{prefix}{label}", sub_gvk, params=[*write, _FORCE],
                 body=f"{META}.Patch", response=sub_def, patch=True, path_params=item_scope)
        if "create" in sub_verbs:
            b.op(path, "post", "post", f"create{prefix}{label}", sub_gvk, params=write, body=sub_def,
                 response=sub_def, path_params=item_scope)


def neutral_paths(group_version: str | None = None) -> dict[str, Obj]:
    """Paths of every resource, or of one group-version (`v1`, `apps/v1`)."""
    b = _Builder()
    for info in catalog.CATALOG:
        if group_version is None or info.api_version == group_version:
            _resource_paths(b, info)
    return b.paths


def _rewrite_refs(node: Any, prefix: str, v3: bool) -> Any:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            ref = prefix + node["$ref"]
            rest = {k: _rewrite_refs(v, prefix, v3) for k, v in node.items() if k != "$ref"}
            if v3 and rest:
                # OpenAPI 3.0 ignores siblings of $ref; Kubernetes wraps the reference in allOf.
                return {"allOf": [{"$ref": ref}], **rest}
            return {"$ref": ref, **rest}
        return {k: _rewrite_refs(v, prefix, v3) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix, v3) for v in node]
    return node


def _v2_operation(op: Obj) -> Obj:
    out = {k: v for k, v in op.items() if not k.startswith("_")}
    params = [dict(p) for p in op["parameters"]]
    if op["_body"]:
        params.insert(0, {"name": "body", "in": "body", "required": True, "schema": {"$ref": op["_body"]}})
    out["parameters"] = params
    out["consumes"] = list(_PATCH_TYPES) if op["_patch"] else ["*/*"]
    out["produces"] = list(_PRODUCES)
    out["schemes"] = ["https"]
    response: Obj = {"description": "OK"}
    if op["_response"]:
        response["schema"] = {"$ref": op["_response"]}
    out["responses"] = {"200": response, "401": {"description": "Unauthorized"}}
    return out


def _v3_param(p: Obj) -> Obj:
    out = {k: v for k, v in p.items() if k not in ("type", "uniqueItems")}
    out["schema"] = {"type": p["type"], "uniqueItems": True}
    return out


def _v3_operation(op: Obj) -> Obj:
    out = {k: v for k, v in op.items() if not k.startswith("_")}
    out["parameters"] = [_v3_param(p) for p in op["parameters"]]
    if op["_body"]:
        types = _PATCH_TYPES if op["_patch"] else ("*/*",)
        out["requestBody"] = {"content": {t: {"schema": {"$ref": op["_body"]}} for t in types},
                              "required": True}
    response: Obj = {"description": "OK"}
    if op["_response"]:
        response["content"] = {t: {"schema": {"$ref": op["_response"]}} for t in _PRODUCES}
    out["responses"] = {"200": response, "401": {"description": "Unauthorized"}}
    return out


def _render_paths(paths: dict[str, Obj], v3: bool) -> Obj:
    out: Obj = {}
    for path, item in sorted(paths.items()):
        rendered: Obj = {}
        for key, value in item.items():
            if key == "parameters":
                rendered[key] = [_v3_param(p) for p in value] if v3 else value
            else:
                rendered[key] = _v3_operation(value) if v3 else _v2_operation(value)
        out[path] = rendered
    return out


_SECURITY = {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header",
                             "description": "Bearer Token authentication"}}


def openapi_v2() -> Obj:
    doc: Obj = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": _render_paths(neutral_paths(), v3=False),
        "definitions": copy.deepcopy(schemas.definitions()),
        "securityDefinitions": _SECURITY,
        "security": [{"BearerToken": []}],
    }
    return dict(_rewrite_refs(doc, "#/definitions/", v3=False))


def group_versions() -> list[str]:
    return sorted({i.api_version for i in catalog.CATALOG})


def v3_path(group_version: str) -> str:
    """`api/v1` or `apis/apps/v1`: the key of a group-version in the /openapi/v3 index."""
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def openapi_v3(group_version: str) -> Obj:
    paths = neutral_paths(group_version)
    wanted: set[str] = set()
    for name in _refs(paths):
        wanted |= schemas.references(name)
    defs = schemas.definitions()
    doc: Obj = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": _render_paths(paths, v3=True),
        "components": {
            "schemas": {name: copy.deepcopy(defs[name]) for name in sorted(wanted)},
            "securitySchemes": _SECURITY,
        },
    }
    return dict(_rewrite_refs(doc, "#/components/schemas/", v3=True))


def _refs(paths: dict[str, Obj]) -> set[str]:
    out: set[str] = {f"{META}.Status", f"{META}.DeleteOptions", f"{META}.Patch"}
    for item in paths.values():
        for key, op in item.items():
            if key != "parameters":
                out.update(r for r in (op["_body"], op["_response"]) if r)
    return out
