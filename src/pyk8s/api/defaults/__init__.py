"""Defaulting per kind, as Kubernetes defaults. SEAM: the api-validation work fills this in."""

from __future__ import annotations

from typing import Any

from pyk8s.api.resource import ResourceInfo


def apply_defaults(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """Fill the defaults Kubernetes fills (restartPolicy, protocol TCP, …) into `obj`, in place."""
