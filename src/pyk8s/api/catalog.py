"""The built-in resources pyk8s serves. SEAM: the apiserver-surface work fills in every resource."""

from __future__ import annotations

from pyk8s.api.resource import ResourceInfo

CATALOG: tuple[ResourceInfo, ...] = (
    ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
                 subresources={"status": "Namespace", "finalize": "Namespace"}),
    ResourceInfo("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",),
                 subresources={"status": "Pod", "binding": "Binding", "eviction": "Eviction"},
                 field_selectors=("spec.nodeName", "status.phase")),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
)

_BY_PLURAL = {(r.group, r.version, r.plural): r for r in CATALOG}
_BY_KIND = {(r.group, r.kind): r for r in CATALOG}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _BY_PLURAL.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceInfo | None:
    return _BY_KIND.get((group, kind))
