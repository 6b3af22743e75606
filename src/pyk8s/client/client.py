"""The async API client: Kubernetes' REST verbs over a Transport, objects as plain JSON dicts.

Every failure the server reports is raised as `pyk8s.api.errors.StatusError` rebuilt from its Status body,
so callers test `e.code == 409` or `e.reason == "AlreadyExists"` as they would with client-go.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from pyk8s.api.resource import ResourceInfo
from pyk8s.client.transport import Response, Transport, status_error, status_error_from_object

__all__ = ["PATCH_TYPES", "Client", "Obj", "WatchEvent", "resource_path"]

Obj = dict[str, Any]
WatchEvent = tuple[str, Obj]

# Short names of the patch content types, as kubectl's --type.
PATCH_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


def resource_path(info: ResourceInfo, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """`/api/v1/namespaces/ns/pods/name/status`; a cluster-wide path when namespace is None."""
    parts = ["/api/v1" if not info.group else f"/apis/{info.group}/{info.version}"]
    if info.namespaced and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(info.plural)
    if name:
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def _query(**params: Any) -> dict[str, str]:
    """Only the parameters that are set, as strings (booleans as Kubernetes spells them)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value is False:
            continue
        out[key] = "true" if value is True else str(value)
    return out


class Client:
    """One API server's resources. `info` comes from `pyk8s.api.catalog` (or discovery, for CRDs)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def close(self) -> None:
        await self.transport.close()

    async def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json", decode: bool = True) -> Obj:
        """Any JSON request by path (discovery, /version, a custom subresource); errors as StatusError.
        Without `decode` the answer's body is not parsed and {} returned: for callers that only need to
        know the write succeeded (a pod's whole JSON costs more to parse than the request to send)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
        resp: Response = await self.transport.request(method, path, query=query, body=data,
                                                      content_type=content_type if data is not None else None)
        if resp.status >= 300:
            raise status_error(resp.status, resp.body)
        if not decode:
            return {}
        result = resp.json()
        return result if isinstance(result, dict) else {}

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", resource_path(info, namespace, name))

    async def get_subresource(self, info: ResourceInfo, name: str, subresource: str,
                              namespace: str | None = None) -> Obj:
        return await self.request("GET", resource_path(info, namespace, name, subresource))

    async def list(self, info: ResourceInfo, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, resource_version_match: str | None = None) -> Obj:
        """One page of a list (`metadata.continue` names the next page when `limit` cut it)."""
        q = _query(labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
                   resourceVersion=resource_version, resourceVersionMatch=resource_version_match)
        if continue_:
            q["continue"] = continue_
        return await self.request("GET", resource_path(info, namespace), query=q)

    async def list_all(self, info: ResourceInfo, namespace: str | None = None, *,
                       label_selector: str | None = None, field_selector: str | None = None,
                       page_size: int = 500) -> Obj:
        """Every page of a list joined: the items, and the resourceVersion of the (consistent) first page."""
        first = await self.list(info, namespace, label_selector=label_selector, field_selector=field_selector,
                                limit=page_size)
        items: list[Obj] = list(first.get("items") or [])
        cont = (first.get("metadata") or {}).get("continue")
        while cont:
            page = await self.list(info, namespace, label_selector=label_selector,
                                   field_selector=field_selector, limit=page_size, continue_=cont)
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
        first["items"] = items
        first.setdefault("metadata", {}).pop("continue", None)
        first["metadata"].pop("remainingItemCount", None)
        return first

    async def create(self, info: ResourceInfo, obj: Obj, namespace: str | None = None, *,
                     field_manager: str | None = None, dry_run: bool = False, decode: bool = True) -> Obj:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        q = _query(fieldManager=field_manager, dryRun="All" if dry_run else None)
        return await self.request("POST", resource_path(info, ns), query=q, body=obj, decode=decode)

    async def create_subresource(self, info: ResourceInfo, name: str, subresource: str, obj: Obj,
                                 namespace: str | None = None, *, decode: bool = True) -> Obj:
        """POST to a subresource: pods/binding, pods/eviction, serviceaccounts/token."""
        return await self.request("POST", resource_path(info, namespace, name, subresource), body=obj,
                                  decode=decode)

    async def update(self, info: ResourceInfo, obj: Obj, namespace: str | None = None, *,
                     subresource: str | None = None, field_manager: str | None = None) -> Obj:
        """PUT; the object's metadata.resourceVersion makes it conditional (409 Conflict when stale)."""
        meta = obj.get("metadata") or {}
        ns = namespace or meta.get("namespace")
        q = _query(fieldManager=field_manager)
        path = resource_path(info, ns, meta.get("name"), subresource)
        return await self.request("PUT", path, query=q, body=obj)

    async def update_status(self, info: ResourceInfo, obj: Obj, namespace: str | None = None) -> Obj:
        return await self.update(info, obj, namespace, subresource="status")

    async def patch(self, info: ResourceInfo, name: str, patch: Any, patch_type: str = "merge",
                    namespace: str | None = None, *, subresource: str | None = None,
                    field_manager: str | None = None, force: bool = False, decode: bool = True) -> Obj:
        """`patch_type` is json, merge, strategic or apply (or a full content type); `force` and a
        field manager are for server-side apply."""
        content_type = PATCH_TYPES.get(patch_type, patch_type)
        q = _query(fieldManager=field_manager, force=force)
        return await self.request("PATCH", resource_path(info, namespace, name, subresource), query=q,
                                  body=patch, content_type=content_type, decode=decode)

    async def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None) -> Obj:
        """DELETE with DeleteOptions; returns the deleted object (or the object marked for deletion,
        or a Success Status, as the server answers)."""
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            opts["preconditions"] = dict(preconditions)
        return await self.request("DELETE", resource_path(info, namespace, name), body=opts)

    async def delete_collection(self, info: ResourceInfo, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                propagation_policy: str | None = None) -> Obj:
        """DELETE on the collection: every object the selectors match (all of them without selectors)."""
        q = _query(labelSelector=label_selector, fieldSelector=field_selector)
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        return await self.request("DELETE", resource_path(info, namespace), query=q, body=opts)

    async def watch(self, info: ResourceInfo, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, allow_bookmarks: bool = False,
                    timeout_seconds: int | None = None) -> AsyncGenerator[WatchEvent, None]:
        """(type, object) for ADDED, MODIFIED, DELETED and BOOKMARK events until the server ends the watch.

        An ERROR event is raised as its StatusError (410 Expired when `resource_version` is too old:
        relist and watch from the list's resourceVersion).
        """
        q = _query(watch=True, resourceVersion=resource_version, labelSelector=label_selector,
                   fieldSelector=field_selector, allowWatchBookmarks=allow_bookmarks,
                   timeoutSeconds=timeout_seconds)
        lines = self.transport.stream("GET", resource_path(info, namespace), q)
        try:
            async for line in lines:
                event = orjson.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise status_error_from_object(obj)
                yield kind, obj
        finally:
            # Ends the request now, not when the garbage collector finds the generator.
            aclose = getattr(lines, "aclose", None)
            if aclose is not None:
                await aclose()
