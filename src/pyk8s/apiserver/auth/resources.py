"""The resources the auth code reads, from the catalog when it has them (the catalog is filled in by
another change; until then these fall back to the same definitions Kubernetes serves)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from pyk8s.api import catalog
from pyk8s.api.resource import ResourceInfo

Obj = dict[str, Any]

# Looks up one object (from the watch cache or the store); may be sync or async.
GetObject = Callable[[ResourceInfo, str, str], "Obj | Awaitable[Obj | None] | None"]

RBAC_GROUP = "rbac.authorization.k8s.io"


def _info(group: str, kind: str, plural: str, namespaced: bool) -> ResourceInfo:
    found = catalog.by_kind(group, kind)
    if found is not None:
        return found
    return ResourceInfo(group, "v1", kind, plural, kind.lower(), namespaced)


def service_accounts() -> ResourceInfo:
    return _info("", "ServiceAccount", "serviceaccounts", True)


def secrets() -> ResourceInfo:
    return _info("", "Secret", "secrets", True)


def pods() -> ResourceInfo:
    return _info("", "Pod", "pods", True)


def nodes() -> ResourceInfo:
    return _info("", "Node", "nodes", False)


def roles() -> ResourceInfo:
    return _info(RBAC_GROUP, "Role", "roles", True)


def cluster_roles() -> ResourceInfo:
    return _info(RBAC_GROUP, "ClusterRole", "clusterroles", False)


def role_bindings() -> ResourceInfo:
    return _info(RBAC_GROUP, "RoleBinding", "rolebindings", True)


def cluster_role_bindings() -> ResourceInfo:
    return _info(RBAC_GROUP, "ClusterRoleBinding", "clusterrolebindings", False)


async def fetch(get_object: GetObject, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
    result = get_object(info, namespace, name)
    if inspect.isawaitable(result):
        return await result
    return result
