"""The API server's HTTP application: the request pipeline (request id, authentication, request info,
authorization, body limit, audit, metrics, Status errors) in front of the resource handlers.

Usage: `web.AppRunner(create_app(APIServerConfig(store)))`; `app[API_SERVER]` is the APIServer, with
`list_objects` (watch-cache reads) and `create_object` (bootstrap writes without HTTP).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pyk8s.api import errors
from pyk8s.api.meta import rfc3339_micro
from pyk8s.apiserver import discovery, health, openapi
from pyk8s.apiserver.errors import status_response, to_status_error
from pyk8s.apiserver.handlers import BODY, REQUEST_INFO, USER, APIServer
from pyk8s.apiserver.interfaces import (
    AdmissionPlugin,
    Attributes,
    Authenticator,
    Authorizer,
    RequestInfo,
    UserInfo,
    VirtualCreate,
)
from pyk8s.apiserver.metrics import Metrics
from pyk8s.apiserver.request_info import parse_request_info
from pyk8s.apiserver.service_alloc import DEFAULT_SERVICE_CIDR, ServiceAllocator
from pyk8s.store.protocol import Store
from pyk8s.util.ids import random_uuid

__all__ = ["API_SERVER", "METRICS", "APIServer", "APIServerConfig", "create_app", "forbidden_message"]

log = logging.getLogger(__name__)

API_SERVER = web.AppKey("api_server", APIServer)
METRICS = web.AppKey("metrics", Metrics)
ADMIN = UserInfo("system:admin", groups=("system:masters", "system:authenticated"))
ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))
# Health endpoints (and the CA, for joining agents) answer without credentials (Kubernetes grants the
# former to system:unauthenticated).
_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/cacerts")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class APIServerConfig:
    store: Store
    authenticator: Authenticator | None = None  # None: everyone is system:admin (unit tests only)
    authorizer: Authorizer | None = None  # None: allow everything
    admission: list[AdmissionPlugin] = field(default_factory=list)
    # (group, resource, subresource) → handler whose returned object is the response (201).
    virtual_creates: dict[tuple[str, str, str], VirtualCreate] = field(default_factory=dict)
    audit: Callable[[dict[str, Any]], None] | None = None  # called once per request with an audit event
    max_body_bytes: int = 3 * 1024 * 1024
    bookmark_interval: float = 60.0  # seconds between watch BOOKMARK events
    # The API server's client certificate for kubelets (pods/log, exec, attach, portforward); None: off.
    kubelet_client_cert: tuple[str, str] | None = None  # (cert file, key file)
    service_cidr: str = DEFAULT_SERVICE_CIDR  # ClusterIPs are allocated from it (--service-cidr)


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """Kubernetes' message for a denied request (responsewriters.forbiddenMessage + NewForbidden)."""
    user = attrs.user.name
    if not attrs.is_resource_request:
        msg = f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        msg = (
            f'User "{user}" cannot {attrs.verb} resource "{resource}" '
            f'in API group "{attrs.api_group}" {where}'
        )
    if reason:
        msg += f": {reason}"
    if not attrs.is_resource_request or not attrs.resource:
        return f"forbidden: {msg}"
    gr = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    return f'{gr} "{attrs.name}" is forbidden: {msg}' if attrs.name else f"{gr} is forbidden: {msg}"


async def _read_body(request: web.Request, limit: int) -> bytes:
    """At most limit+1 bytes are ever read: anything larger is a 413."""
    def too_large() -> errors.StatusError:
        return errors.request_entity_too_large(f"Request entity too large: limit is {limit}")

    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.read(min(65536, limit + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _attributes(user: UserInfo, ri: RequestInfo) -> Attributes:
    return Attributes(
        user=user,
        verb=ri.verb,
        is_resource_request=ri.is_resource_request,
        path=ri.path,
        api_group=ri.api_group,
        api_version=ri.api_version,
        namespace=ri.namespace,
        resource=ri.resource,
        subresource=ri.subresource,
        name=ri.name,
    )


def _audit_event(
    request: web.Request,
    audit_id: str,
    ri: RequestInfo | None,
    user: UserInfo | None,
    code: int,
    started: float,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": request.path_qs,
        "verb": ri.verb if ri is not None else request.method.lower(),
        "user": (user or ANONYMOUS).to_dict(),
        "sourceIPs": [request.remote or ""],
        "userAgent": request.headers.get("User-Agent", ""),
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": rfc3339_micro(started),
        "stageTimestamp": rfc3339_micro(time.time()),
    }
    if ri is not None and ri.is_resource_request:
        ref = {
            "resource": ri.resource,
            "namespace": ri.namespace,
            "name": ri.name,
            "apiGroup": ri.api_group,
            "apiVersion": ri.api_version,
            "subresource": ri.subresource,
        }
        event["objectRef"] = {k: v for k, v in ref.items() if v}
    return event


def _pipeline(config: APIServerConfig, metrics: Metrics) -> Any:
    @web.middleware
    async def pipeline(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started_wall = time.time()
        started = time.monotonic()
        audit_id = request.headers.get("Audit-ID") or random_uuid()
        ri: RequestInfo | None = None
        user: UserInfo | None = None
        resp: web.StreamResponse
        try:
            ri = parse_request_info(request.method, request.path, request.query)
            request[REQUEST_INFO] = ri
            if config.authenticator is None:
                user = ADMIN
            else:
                user = await config.authenticator.authenticate(request)
            public = request.path.startswith(_PUBLIC_PATHS)
            if user is None:
                if not public:
                    raise errors.unauthorized()
                user = ANONYMOUS
            request[USER] = user
            if config.authorizer is not None and not (public and user is ANONYMOUS):
                attrs = _attributes(user, ri)
                decision = await config.authorizer.authorize(attrs)
                if not decision.allowed:
                    raise errors.forbidden(
                        forbidden_message(attrs, decision.reason), ri.resource, ri.name, ri.api_group
                    )
            request[BODY] = (
                await _read_body(request, config.max_body_bytes) if request.method in _BODY_METHODS else b""
            )
            resp = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = to_status_error(exc)
            resp = status_response(err, request.query.get("pretty") in ("true", "1"))
        code = resp.status
        if not resp.prepared:
            resp.headers["Audit-Id"] = audit_id
        verb = ri.verb if ri is not None else request.method.lower()
        resource = ri.resource if ri is not None else ""
        group = ri.api_group if ri is not None else ""
        sub = ri.subresource if ri is not None else ""
        # Kubernetes labels LIST and WATCH by verb and everything else by HTTP method.
        metric_verb = verb.upper() if verb in ("list", "watch") else request.method
        metrics.record(metric_verb, group, resource, sub, str(code),
                       None if verb == "watch" else time.monotonic() - started)
        if config.audit is not None:
            try:
                config.audit(_audit_event(request, audit_id, ri, user, code, started_wall))
            except Exception:
                log.exception("audit sink failed")
        return resp

    return pipeline


def create_app(config: APIServerConfig) -> web.Application:
    metrics = Metrics()
    app = web.Application(middlewares=[_pipeline(config, metrics)], client_max_size=config.max_body_bytes + 1)
    server = APIServer(
        config.store, list(config.admission), dict(config.virtual_creates), config.bookmark_interval
    )
    server.metrics = metrics
    server.registry.services = ServiceAllocator(config.service_cidr)
    if config.kubelet_client_cert is not None:
        from pyk8s.apiserver.proxy import KubeletProxy

        server.kubelet_proxy = KubeletProxy(server, *config.kubelet_client_cert)
    app[API_SERVER] = server
    app[METRICS] = metrics

    discovery.add_routes(app)
    openapi.add_routes(app)
    for name in ("healthz", "livez", "readyz"):
        h = health.handler(name, config.store, server.caches)
        app.router.add_get(f"/{name}", h)
        app.router.add_get(f"/{name}/{{check:.*}}", h)
    app.router.add_get("/metrics", metrics.handle)
    app.router.add_route("*", "/api/{tail:.*}", server.handle)
    app.router.add_route("*", "/apis/{tail:.*}", server.handle)

    async def start(_: web.Application) -> None:
        assert server.registry.services is not None
        await server.registry.services.repair(config.store)  # before the first request is served
        await server.caches.start()

    async def stop(_: web.Application) -> None:
        await server.caches.stop()
        if server.kubelet_proxy is not None:
            await server.kubelet_proxy.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app
