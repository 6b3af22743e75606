"""Parse a request's method and path into a RequestInfo, as Kubernetes' RequestInfoFactory does.

Resource paths:
  /api/{version}/{resource}[/{name}[/{subresource}]]
  /api/{version}/namespaces/{namespace}/{resource}[/{name}[/{subresource}]]
  /apis/{group}/{version}/...                      (the same under a group)
  /api/{version}/watch/...                         (deprecated watch prefix)
Everything else is a non-resource URL whose verb is the lowercased HTTP method.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyk8s.apiserver.interfaces import RequestInfo

_VERB_BY_METHOD = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# Subresources of a namespace itself: /api/v1/namespaces/{name}/status is not a resource "status".
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_SPECIAL_VERBS = frozenset({"proxy", "watch"})


def _is_true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _exact_name(field_selector: str) -> str:
    """The name a field selector pins with metadata.name=X (or ==X), else ""."""
    for term in field_selector.split(","):
        key, sep, value = term.partition("==") if "==" in term else term.partition("=")
        if sep and not key.endswith("!") and key.strip() == "metadata.name":
            name = value.strip()
            if name and name not in (".", "..") and "/" not in name and "%" not in name:
                return name
    return ""


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    verb = method.lower()
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    non_resource = RequestInfo(path=path, verb=verb, is_resource_request=False)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    prefix = parts[0]
    rest = parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 2:  # /apis, /apis/{group}: discovery
            return non_resource
        group, rest = rest[0], rest[1:]
    if not rest:  # /api: discovery
        return non_resource
    version, rest = rest[0], rest[1:]
    if not rest:  # /api/v1, /apis/apps/v1: discovery
        return non_resource

    kube_verb = _VERB_BY_METHOD.get(method.upper(), "")
    if rest[0] in _SPECIAL_VERBS:
        if len(rest) < 2:
            return non_resource
        kube_verb, rest = rest[0], rest[1:]

    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""

    if not name and kube_verb == "get":
        kube_verb = "watch" if _is_true(query.get("watch")) else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if not name and kube_verb == "delete":
        kube_verb = "deletecollection"
    return RequestInfo(
        path=path,
        verb=kube_verb,
        is_resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )
