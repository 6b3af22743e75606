"""The admission chain (mutating `admit` of every plugin, then validating `validate`) and the built-in
NamespaceLifecycle check, which needs the store and so lives in the HTTP core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from pyk8s.api import errors
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver.interfaces import AdmissionPlugin, AdmissionRequest, Obj

# Namespaces that exist in every cluster and may not be deleted.
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})

NamespaceLookup = Callable[[str], Awaitable[Obj | None]]


async def run_mutating(plugins: Sequence[AdmissionPlugin], request: AdmissionRequest) -> None:
    for p in plugins:
        await p.admit(request)


async def run_validating(plugins: Sequence[AdmissionPlugin], request: AdmissionRequest) -> None:
    for p in plugins:
        await p.validate(request)


async def namespace_lifecycle(
    operation: str, info: ResourceInfo, namespace: str, name: str, lookup: NamespaceLookup
) -> None:
    """Refuse what Kubernetes' NamespaceLifecycle plugin refuses: creating in a namespace that does
    not exist (404) or is terminating (403), and deleting the immortal namespaces (403)."""
    if info.plural == "namespaces" and info.group == "":
        if operation == "DELETE" and name in IMMORTAL_NAMESPACES:
            raise errors.forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted', "namespaces", name
            )
        return
    if operation != "CREATE" or not info.namespaced or not namespace:
        return
    ns = await lookup(namespace)
    if ns is None:
        raise errors.not_found("namespaces", namespace)
    if ns.get("status", {}).get("phase") == "Terminating" or ns.get("metadata", {}).get("deletionTimestamp"):
        subject = f'{info.group_resource} "{name}"' if name else info.group_resource
        raise errors.forbidden(
            f"{subject} is forbidden: unable to create new content in namespace {namespace} because it is "
            "being terminated",
            info.plural,
            name,
            info.group,
        )
