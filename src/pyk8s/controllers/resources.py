"""The API resources the controllers work on, looked up in the catalog once, at import."""

from __future__ import annotations

from pyk8s.api import catalog
from pyk8s.api.resource import ResourceInfo


def resource(group: str, plural: str) -> ResourceInfo:
    """The v1 resource `plural` of `group` ("" for the core group); the catalog must have it."""
    found = catalog.lookup(group, "v1", plural)
    assert found is not None, f"{plural}.{group} is not in the catalog"
    return found
