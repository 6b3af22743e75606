"""RequestInfo parsing, case by case as Kubernetes' RequestInfoFactory tests state them."""

from __future__ import annotations

import pytest

from pyk8s.apiserver.request_info import parse_request_info


@pytest.mark.parametrize(
    ("method", "path", "query", "verb", "group", "version", "ns", "resource", "sub", "name"),
    [
        ("GET", "/api/v1/namespaces", {}, "list", "", "v1", "", "namespaces", "", ""),
        ("GET", "/api/v1/namespaces/other", {}, "get", "", "v1", "other", "namespaces", "", "other"),
        ("GET", "/api/v1/namespaces/other/pods", {}, "list", "", "v1", "other", "pods", "", ""),
        ("GET", "/api/v1/namespaces/other/pods/foo", {}, "get", "", "v1", "other", "pods", "", "foo"),
        ("HEAD", "/api/v1/namespaces/other/pods/foo", {}, "get", "", "v1", "other", "pods", "", "foo"),
        ("GET", "/api/v1/pods", {}, "list", "", "v1", "", "pods", "", ""),
        ("GET", "/api/v1/pods", {"watch": "true"}, "watch", "", "v1", "", "pods", "", ""),
        ("GET", "/api/v1/watch/pods", {}, "watch", "", "v1", "", "pods", "", ""),
        ("GET", "/api/v1/watch/namespaces/other/pods/foo", {}, "watch", "", "v1", "other", "pods", "", "foo"),
        (
            "GET",
            "/api/v1/namespaces/other/pods",
            {"watch": "1", "fieldSelector": "metadata.name=foo"},
            "watch",
            "",
            "v1",
            "other",
            "pods",
            "",
            "foo",
        ),
        (
            "GET",
            "/api/v1/namespaces/other/pods",
            {"fieldSelector": "metadata.name!=foo"},
            "list",
            "",
            "v1",
            "other",
            "pods",
            "",
            "",
        ),
        ("POST", "/api/v1/namespaces/other/pods", {}, "create", "", "v1", "other", "pods", "", ""),
        ("PUT", "/api/v1/namespaces/other/pods/foo", {}, "update", "", "v1", "other", "pods", "", "foo"),
        ("PATCH", "/api/v1/namespaces/other/pods/foo", {}, "patch", "", "v1", "other", "pods", "", "foo"),
        ("DELETE", "/api/v1/namespaces/other/pods/foo", {}, "delete", "", "v1", "other", "pods", "", "foo"),
        (
            "DELETE",
            "/api/v1/namespaces/other/pods",
            {},
            "deletecollection",
            "",
            "v1",
            "other",
            "pods",
            "",
            "",
        ),
        (
            "GET",
            "/api/v1/namespaces/other/pods/foo/status",
            {},
            "get",
            "",
            "v1",
            "other",
            "pods",
            "status",
            "foo",
        ),
        (
            "POST",
            "/api/v1/namespaces/other/pods/foo/binding",
            {},
            "create",
            "",
            "v1",
            "other",
            "pods",
            "binding",
            "foo",
        ),
        (
            "PUT",
            "/api/v1/namespaces/other/finalize",
            {},
            "update",
            "",
            "v1",
            "other",
            "namespaces",
            "finalize",
            "other",
        ),
        (
            "GET",
            "/api/v1/namespaces/other/status",
            {},
            "get",
            "",
            "v1",
            "other",
            "namespaces",
            "status",
            "other",
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/other/deployments/web/scale",
            {},
            "get",
            "apps",
            "v1",
            "other",
            "deployments",
            "scale",
            "web",
        ),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {},
            "list",
            "rbac.authorization.k8s.io",
            "v1",
            "",
            "clusterroles",
            "",
            "",
        ),
    ],
)
def test_resource_requests(
    method: str,
    path: str,
    query: dict[str, str],
    verb: str,
    group: str,
    version: str,
    ns: str,
    resource: str,
    sub: str,
    name: str,
) -> None:
    ri = parse_request_info(method, path, query)
    assert ri.is_resource_request
    assert (ri.verb, ri.api_group, ri.api_version, ri.namespace, ri.resource, ri.subresource, ri.name) == (
        verb,
        group,
        version,
        ns,
        resource,
        sub,
        name,
    )
    assert ri.api_prefix == path.split("/")[1]


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/", "get"),
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/apis", "get"),
        ("GET", "/apis/apps", "get"),
        ("GET", "/apis/apps/v1", "get"),
        ("GET", "/healthz", "get"),
        ("POST", "/logs", "post"),
        ("GET", "/openapi/v2", "get"),
        ("GET", "/api/v1/watch", "get"),
    ],
)
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    ri = parse_request_info(method, path, {})
    assert not ri.is_resource_request
    assert ri.verb == verb
    assert ri.path == path
