"""OpenAPI for kubectl explain, kubectl's field-validation check and clients: /openapi/v2 and /openapi/v3.

The documents are static per process: each is built on first request, encoded once and then served from
memory with an ETag. /openapi/v3/<group-version> answers `?hash=` URLs as Kubernetes does: immutable when
the hash is current, a redirect to the current hash otherwise.
"""

from __future__ import annotations

import functools
import hashlib

import orjson
from aiohttp import web

from pyk8s.api import errors
from pyk8s.apiserver.errors import status_response
from pyk8s.apiserver.openapi import document
from pyk8s.apiserver.openapi.schema import definition_name, resource_definition, unknown_fields

__all__ = ["add_routes", "definition_name", "resource_definition", "unknown_fields"]

_PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2"


class _Doc:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.hash = hashlib.sha512(body).hexdigest()[:128].upper()
        self.etag = f'"{self.hash}"'


@functools.cache
def _v2() -> _Doc:
    return _Doc(orjson.dumps(document.openapi_v2()))


@functools.cache
def _v3(group_version: str) -> _Doc:
    return _Doc(orjson.dumps(document.openapi_v3(group_version)))


_V3_PATHS = {document.v3_path(gv): gv for gv in document.group_versions()}


def _respond(request: web.Request, doc: _Doc, cache_control: str) -> web.Response:
    headers = {"ETag": doc.etag, "Cache-Control": cache_control, "Vary": "Accept"}
    if request.headers.get("If-None-Match") == doc.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=doc.body, content_type="application/json", headers=headers)


def _accepts_json(accept: str) -> bool:
    if not accept.strip():
        return True
    for media_range in accept.split(","):
        media = media_range.split(";")[0].strip()
        if media in ("application/json", "application/*", "*/*"):
            return True
    return False


def _not_acceptable(accept: str) -> web.Response:
    # Only the JSON encoding is served; a protobuf-only client gets 406 and falls back.
    return status_response(errors.not_acceptable(f"only application/json is supported, not {accept!r}"))


async def _handle_v2(request: web.Request) -> web.StreamResponse:
    accept = request.headers.get("Accept", "")
    if not _accepts_json(accept):
        return _not_acceptable(accept)
    return _respond(request, _v2(), "no-cache, private")


async def _handle_v3_index(request: web.Request) -> web.StreamResponse:
    paths = {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={_v3(gv).hash}"}
             for path, gv in sorted(_V3_PATHS.items())}
    return web.Response(body=orjson.dumps({"paths": paths}), content_type="application/json",
                        headers={"Cache-Control": "no-cache, private"})


async def _handle_v3(request: web.Request) -> web.StreamResponse:
    path = request.match_info["path"]
    gv = _V3_PATHS.get(path)
    if gv is None:
        message = f"the server could not find the requested resource: /openapi/v3/{path}"
        return status_response(errors.StatusError(404, "NotFound", message))
    accept = request.headers.get("Accept", "")
    if not _accepts_json(accept):
        return _not_acceptable(accept)
    doc = _v3(gv)
    wanted = request.query.get("hash")
    if wanted is None:
        return _respond(request, doc, "no-cache, private")
    if wanted != doc.hash:
        raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={doc.hash}")
    response = _respond(request, doc, "public, immutable")
    response.headers["Expires"] = "Thu, 01 Jan 2099 00:00:00 GMT"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v2", _handle_v2)
    app.router.add_get("/openapi/v3", _handle_v3_index)
    app.router.add_get("/openapi/v3/", _handle_v3_index)
    app.router.add_get("/openapi/v3/{path:.+}", _handle_v3)
