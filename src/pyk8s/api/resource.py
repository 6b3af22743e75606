"""What the API knows about one resource: its group, version, kind, scope and names.

The catalog of built-in resources lives in `pyk8s.api.catalog`; this module holds only the shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str  # "" for core
    version: str  # "v1"
    kind: str  # "Pod"
    plural: str  # "pods"
    singular: str  # "pod"
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Subresource name → kind served there ("status" → same kind, "scale" → autoscaling/v1 Scale, …).
    subresources: dict[str, str] = field(default_factory=dict)
    # Field selectors this kind supports beyond metadata.name and metadata.namespace.
    field_selectors: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`pods` or `deployments.apps`, as Kubernetes names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def storage_prefix(self, namespace: str | None = None) -> str:
        """Store keys: /registry/<group or core>/<plural>/[<namespace>/]<name>."""
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def storage_key(self, namespace: str | None, name: str) -> str:
        return f"{self.storage_prefix(namespace)}{name}"
