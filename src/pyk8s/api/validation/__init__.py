"""Validation per kind, as Kubernetes validates. SEAM: the api-validation work fills this in."""

from __future__ import annotations

from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.resource import ResourceInfo


def validate(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Every problem with `obj` (an update of `old` when given), with field paths; [] when valid."""
    return []
