"""API discovery: /version, /api, /apis and the per-group documents, legacy and aggregated (apidiscovery v2).

Every document is static for the life of the process, so each is built and encoded once at import of the
routes; a request only picks the encoding its Accept header asks for.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from pyk8s.api import catalog
from pyk8s.api.resource import ResourceInfo

Obj = dict[str, Any]

KUBE_MAJOR, KUBE_MINOR = "1", "32"
GIT_VERSION = f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-pyk8s"

_AGG_GROUP = "apidiscovery.k8s.io"
_AGG_AS = "APIGroupDiscoveryList"
# Kubernetes' generic API server marks every response private and not to be reused without revalidation.
_CACHE_CONTROL = "no-cache, private"


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Kubernetes' discovery hash of the storage version: base64 of the first 8 bytes of
    sha256("<group>/<version>/<kind>")."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _storage_gvk(info: ResourceInfo) -> tuple[str, str, str]:
    # events.k8s.io/v1 Events are stored as core v1 Events.
    if info.group == "events.k8s.io" and info.kind == "Event":
        return "", "v1", "Event"
    return info.group, info.version, info.kind


def version_info() -> Obj:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": "cpython",
        "platform": f"{sys.platform}/{machine}",
    }


def _group_versions() -> dict[str, list[ResourceInfo]]:
    out: dict[str, list[ResourceInfo]] = {}
    for info in catalog.CATALOG:
        out.setdefault(info.api_version, []).append(info)
    return out


def _gv(group: str, version: str) -> Obj:
    return {"groupVersion": f"{group}/{version}" if group else version, "version": version}


def _subresource_verbs(name: str) -> list[str]:
    return list(catalog.SUBRESOURCE_VERBS.get(name, ("get",)))


def api_resource_list(group: str, version: str) -> Obj:
    """The legacy APIResourceList for one group-version, subresources as `pods/status` entries."""
    resources: list[Obj] = []
    for info in catalog.CATALOG:
        if info.group != group or info.version != version:
            continue
        entry: Obj = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                      "kind": info.kind, "verbs": sorted(info.verbs)}
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        if not catalog.is_create_only(info):
            entry["storageVersionHash"] = storage_version_hash(*_storage_gvk(info))
        resources.append(entry)
        for sub, kind in info.subresources.items():
            sub_entry: Obj = {"name": f"{info.plural}/{sub}", "singularName": "",
                              "namespaced": info.namespaced}
            sub_group, sub_version = catalog.subresource_group_version(info, sub)
            if (sub_group, sub_version) != (group, version):
                sub_entry["group"], sub_entry["version"] = sub_group, sub_version
            sub_entry["kind"] = kind
            sub_entry["verbs"] = _subresource_verbs(sub)
            resources.append(sub_entry)
    resources.sort(key=lambda r: str(r["name"]))
    doc: Obj = {"kind": "APIResourceList"}
    if group:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group}/{version}" if group else version
    doc["resources"] = resources
    return doc


def api_group(group: str) -> Obj:
    versions = sorted({i.version for i in catalog.CATALOG if i.group == group})
    gvs = [_gv(group, v) for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> Obj:
    groups = [api_group(g) for g in catalog.GROUP_ORDER if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _discovery_resource(info: ResourceInfo) -> Obj:
    entry: Obj = {
        "resource": info.plural,
        "responseKind": {"group": "", "version": "", "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs: list[Obj] = []
    for sub, kind in sorted(info.subresources.items()):
        sub_group, sub_version = catalog.subresource_group_version(info, sub)
        same = (sub_group, sub_version) == (info.group, info.version)
        subs.append({
            "subresource": sub,
            "responseKind": {"group": "" if same else sub_group, "version": "" if same else sub_version,
                             "kind": kind},
            "verbs": _subresource_verbs(sub),
        })
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated_list(api_version: str, legacy: bool) -> Obj:
    """An APIGroupDiscoveryList: the core group alone for /api (legacy=True), every named group for /apis."""
    groups = [""] if legacy else [g for g in catalog.GROUP_ORDER if g]
    items: list[Obj] = []
    for group in groups:
        versions: list[Obj] = []
        for version in sorted({i.version for i in catalog.CATALOG if i.group == group}):
            infos = sorted((i for i in catalog.CATALOG if i.group == group and i.version == version),
                           key=lambda i: i.plural)
            versions.append({"version": version, "resources": [_discovery_resource(i) for i in infos],
                             "freshness": "Current"})
        meta: Obj = {"creationTimestamp": None}
        if group:
            meta["name"] = group
        items.append({"metadata": meta, "versions": versions})
    return {"kind": _AGG_AS, "apiVersion": f"{_AGG_GROUP}/{api_version}", "metadata": {}, "items": items}


@dataclass(frozen=True, slots=True)
class _Encoded:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, doc: Obj, content_type: str = "application/json") -> _Encoded:
        body = orjson.dumps(doc)
        return cls(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32].upper() + '"')

    def respond(self, request: web.Request) -> web.Response:
        headers = {"ETag": self.etag, "Cache-Control": _CACHE_CONTROL, "Vary": "Accept"}
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers=headers)
        resp = web.Response(body=self.body, headers=headers)
        resp.headers["Content-Type"] = self.content_type
        return resp


def _aggregated_version(accept: str) -> str | None:
    """`v2` or `v2beta1` when the Accept header asks for aggregated discovery (first match wins, as the
    client lists its preferences in order), else None for the legacy document."""
    for media_range in accept.split(","):
        parts = [p.strip() for p in media_range.split(";")]
        if parts[0] not in ("application/json", "application/*", "*/*"):
            continue
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        version = params.get("v", "")
        if params.get("g") == _AGG_GROUP and params.get("as") == _AGG_AS and version in ("v2", "v2beta1"):
            return version
        if "g" not in params:
            return None  # plain JSON preferred before any aggregated form
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _negotiated(legacy: _Encoded, aggregated: dict[str, _Encoded]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        version = _aggregated_version(request.headers.get("Accept", ""))
        return (aggregated[version] if version else legacy).respond(request)

    return handle


def _static(doc: _Encoded) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return doc.respond(request)

    return handle


def _agg_encoded(legacy: bool) -> dict[str, _Encoded]:
    return {v: _Encoded.of(aggregated_list(v, legacy), f"application/json;g={_AGG_GROUP};v={v};as={_AGG_AS}")
            for v in ("v2", "v2beta1")}


async def _api_versions(request: web.Request) -> web.StreamResponse:
    # The address clients should use; Kubernetes advertises its own bind address and port.
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    address = f"{sockname[0]}:{sockname[1]}" if isinstance(sockname, tuple) else request.host
    doc = {"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}
    return web.json_response(body=orjson.dumps(doc), headers={"Cache-Control": _CACHE_CONTROL})


def add_routes(app: web.Application) -> None:
    """Register the discovery endpoints on `app` (GET and HEAD)."""
    api_agg = _agg_encoded(legacy=True)
    apis_agg = _agg_encoded(legacy=False)

    async def api_root(request: web.Request) -> web.StreamResponse:
        version = _aggregated_version(request.headers.get("Accept", ""))
        if version:
            return api_agg[version].respond(request)
        return await _api_versions(request)

    def add(path: str, handler: Handler) -> None:
        # The official Python client asks with a trailing slash (`/api/v1/`), kubectl without.
        app.router.add_get(path, handler)
        app.router.add_get(path + "/", handler)

    add("/version", _static(_Encoded.of(version_info())))
    add("/api", api_root)
    add("/apis", _negotiated(_Encoded.of(api_group_list()), apis_agg))
    for infos in _group_versions().values():
        group, version = infos[0].group, infos[0].version
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        add(prefix, _static(_Encoded.of(api_resource_list(group, version))))
    for group in catalog.GROUP_ORDER:
        if group:
            doc = {"kind": "APIGroup", "apiVersion": "v1", **api_group(group)}
            add(f"/apis/{group}", _static(_Encoded.of(doc)))
