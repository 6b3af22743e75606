"""The resource endpoints: one handler that routes a parsed RequestInfo to list, watch, get, create,
update, patch, delete, deletecollection and the subresources."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from pyk8s.api import catalog, errors
from pyk8s.api.patch import APPLY_PATCH
from pyk8s.api.resource import ResourceInfo
from pyk8s.apiserver import codec, subresources, tables
from pyk8s.apiserver.interfaces import Obj, RequestInfo, UserInfo, VirtualCreate
from pyk8s.apiserver.metrics import Metrics
from pyk8s.apiserver.registry import DeleteOptions, Registry, RequestContext
from pyk8s.apiserver.selectors import Matcher, combine, field_matcher, label_matcher
from pyk8s.apiserver.watch_cache import WatchCacheSet, decode
from pyk8s.store.errors import Compacted
from pyk8s.store.protocol import Store

# Per-request state the pipeline and the handlers share.
REQUEST_INFO = web.RequestKey("request_info", RequestInfo)
BODY = web.RequestKey("body", bytes)
USER = web.RequestKey("user", UserInfo)
CTX = web.RequestKey("ctx", RequestContext)
FIELD_VALIDATION = web.RequestKey("field_validation", str)

# Storages with ReturnDeletedObject (Kubernetes' registries): a delete answers with the object; the
# others answer a Status naming what was deleted.
RETURN_DELETED_OBJECT = frozenset(
    {("", "pods"), ("", "serviceaccounts"), ("", "namespaces"), ("storage.k8s.io", "storageclasses")}
)
_IDLE_CHECK = 5.0  # seconds
_NOT_FOUND = "the server could not find the requested resource"
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of "
    "the results. Continuing with the provided token results in an inconsistent list - objects that were "
    "created, modified, or deleted between the time the first chunk was returned and now may show up in the "
    "list."
)
_LIST_EXPIRED = "The resourceVersion for the provided list is too old."
TABLE_MEDIA = "as=Table"


def _int_param(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{raw}": must be an integer') from None


def _rv_param(raw: str) -> int:
    try:
        rv = int(raw)
    except ValueError:
        rv = -1
    if rv < 0:
        raise errors.StatusError(
            400, "BadRequest", f'resourceVersion: Invalid value: "{raw}": must be a non-negative integer'
        )
    return rv


def _is_true(raw: str | None) -> bool:
    return raw is not None and raw.lower() in ("true", "1")


def encode_continue(revision: int, key: str, prefix: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": key[len(prefix) :] + "\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode()


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        rv, start = int(raw["rv"]), str(raw["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: not a valid continue token") from None
    if raw.get("v") != "meta.k8s.io/v1" or rv <= 0 or not start.endswith("\x00") or ".." in start:
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    return rv, prefix + start[:-1]


class APIServer:
    """The API's state: store, watch caches, registry; `handle` serves every resource request."""

    def __init__(
        self,
        store: Store,
        admission: list[Any],
        virtual_creates: dict[tuple[str, str, str], VirtualCreate],
        bookmark_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.caches = WatchCacheSet(store)
        self.registry = Registry(store, self.caches, admission)
        self.virtual_creates = virtual_creates
        self.bookmark_interval = bookmark_interval
        self.open_watches = 0
        self.metrics: Metrics | None = None
        self.kubelet_proxy: Any = None  # proxy.KubeletProxy: pods/log, exec, attach, portforward

    # -- for components inside the server (no HTTP) --------------------------------------------------

    def list_objects(self, info: ResourceInfo) -> Iterable[Obj]:
        """The ObjectLister: current objects of `info` from the watch cache."""
        cache = self.caches.caches.get(info.storage_prefix())
        return list(cache.objects.values()) if cache is not None else []

    async def get_object(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        """One object, or None: from the watch cache, else the store (the cache may not have caught up
        with an object created a moment ago). Authentication reads service accounts and tokens so."""
        key = info.storage_key(namespace if info.namespaced else None, name)
        cache = self.caches.caches.get(info.storage_prefix())
        if cache is not None and key in cache.objects:
            return cache.objects[key]
        try:
            return await self.registry.get(info, namespace, name)
        except errors.StatusError as e:
            if e.code == 404:
                return None
            raise

    async def create_object(self, info: ResourceInfo, obj: Obj) -> Obj:
        """Create as the system (bootstrap): defaulted, validated, admitted, stored."""
        ctx = RequestContext(UserInfo("system:apiserver", groups=("system:masters",)))
        ns = obj.get("metadata", {}).get("namespace", "") if info.namespaced else ""
        return await self.registry.create(info, ns, obj, ctx)

    # -- HTTP ----------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ri: RequestInfo = request[REQUEST_INFO]
        if not ri.is_resource_request:
            raise errors.StatusError(404, "NotFound", _NOT_FOUND)
        info = catalog.lookup(ri.api_group, ri.api_version, ri.resource)
        if info is None:
            raise errors.StatusError(404, "NotFound", _NOT_FOUND)
        namespace = ri.namespace if info.namespaced else ""
        name = ri.name
        if info.plural == "namespaces" and info.group == "":
            namespace = ""
        elif not info.namespaced and ri.namespace:
            raise errors.StatusError(404, "NotFound", _NOT_FOUND)
        if info.namespaced and not namespace and ri.verb not in ("list", "watch"):
            raise errors.StatusError(404, "NotFound", _NOT_FOUND)
        sub = ri.subresource
        if sub and sub not in info.subresources:
            raise errors.StatusError(404, "NotFound", _NOT_FOUND)
        ctx = self._context(request)
        verb = ri.verb
        virtual = self.virtual_creates.get((info.group, info.plural, sub))
        if virtual is not None:
            if verb != "create":
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
            out = await virtual(request[USER], namespace, name, body)
            return self.respond(request, out, 201)
        if catalog.is_create_only(info) and verb != "create":
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")

        if sub:
            return await self._subresource(request, info, verb, namespace, name, sub, ctx)
        if verb == "list":
            return await self._list(request, info, namespace)
        if verb == "watch":
            return await self._watch(request, info, namespace, name)
        if verb == "get":
            obj = await self._get(request, info, namespace, name)
            return self._respond_objects(request, info, obj)
        if verb not in info.verbs:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if verb == "create":
            if info.plural == "bindings" and info.group == "":
                body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
                out = await subresources.bind(self.registry, namespace, "", body, ctx)
                return self.respond(request, out, 201)
            body = self._decode_body(request, info, ctx)
            if name:
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            out = await self.registry.create(info, namespace, body, ctx)
            return self.respond(request, out, 201, ctx)
        if verb == "update":
            body = self._decode_body(request, info, ctx)
            out, created = await self.registry.update(info, namespace, name, body, ctx)
            return self.respond(request, out, 201 if created else 200, ctx)
        if verb == "patch":
            return await self._patch(request, info, namespace, name, "", ctx)
        if verb == "delete":
            opts = self._delete_options(request)
            out, deleted = await self.registry.delete(info, namespace, name, opts, ctx)
            code = 202 if not deleted and opts.orphan_dependents is False else 200
            if deleted and (info.group, info.plural) not in RETURN_DELETED_OBJECT:
                meta = out["metadata"]
                details = {
                    "name": meta.get("name", ""),
                    "group": info.group,
                    "kind": info.plural,
                    "uid": meta.get("uid", ""),
                }
                out = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {k: v for k, v in details.items() if v},
                }
            return self.respond(request, out, code, ctx)
        if verb == "deletecollection":
            opts = self._delete_options(request)
            matcher = combine(
                label_matcher(request.query.get("labelSelector")),
                field_matcher(info, request.query.get("fieldSelector")),
            )
            items = await self.registry.delete_collection(info, namespace, matcher, opts, ctx)
            return self.respond(
                request,
                {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": {}, "items": items},
                200,
                ctx,
            )
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    # -- pieces --------------------------------------------------------------------------------------

    def _context(self, request: web.Request) -> RequestContext:
        q = request.query
        dry_run = q.getall("dryRun", [])
        for v in dry_run:
            if v != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        mode = q.get("fieldValidation") or "Warn"
        if mode not in codec.FIELD_VALIDATION:
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Warn", "Strict"'
            )
        manager = q.get("fieldManager", "")
        if len(manager) > 128:
            raise errors.invalid(
                "",
                "",
                [errors.Cause("FieldValueTooLong", "must have at most 128 characters", "fieldManager")],
            )
        ctx = RequestContext(
            request[USER],
            dry_run=bool(dry_run),
            field_manager=manager,
            user_agent=request.headers.get("User-Agent", ""),
        )
        request[FIELD_VALIDATION] = mode
        ctx.field_validation = mode
        request[CTX] = ctx
        return ctx

    def _decode_body(
        self, request: web.Request, info: ResourceInfo, ctx: RequestContext, check_fields: bool = True
    ) -> Obj:
        body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
        if check_fields:
            ctx.warnings.extend(codec.check_unknown_fields(info, body, request[FIELD_VALIDATION]))
        return body

    def _delete_options(self, request: web.Request) -> DeleteOptions:
        q = request.query
        body: Obj = {}
        if request[BODY]:
            body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
        pre = body.get("preconditions") or {}
        grace = _int_param(q, "gracePeriodSeconds")
        if grace is None:
            grace = body.get("gracePeriodSeconds")
        policy = q.get("propagationPolicy") or body.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan", "nil"'
            )
        orphan = body.get("orphanDependents")
        if "orphanDependents" in q:
            orphan = _is_true(q.get("orphanDependents"))
        if orphan is not None and policy is not None:
            raise errors.invalid(
                "DeleteOptions",
                "",
                [
                    errors.Cause(
                        "FieldValueInvalid",
                        "orphanDependents and deletionPropagation cannot be both set",
                        "propagationPolicy",
                    )
                ],
            )
        if "All" in (body.get("dryRun") or []):
            request[CTX].dry_run = True
        return DeleteOptions(
            grace_period_seconds=grace,
            propagation_policy=policy,
            orphan_dependents=orphan,
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
        )

    async def _get(self, request: web.Request, info: ResourceInfo, namespace: str, name: str) -> Obj:
        if request.query.get("resourceVersion") == "0":
            cache = self.caches.caches.get(info.storage_prefix())
            obj = cache.objects.get(info.storage_key(namespace, name)) if cache is not None else None
            if obj is None:
                raise errors.not_found(info.plural, name, info.group)
            return obj
        return await self.registry.get(info, namespace, name)

    def respond(
        self, request: web.Request, obj: Any, status: int = 200, ctx: RequestContext | None = None
    ) -> web.Response:
        pretty = _is_true(request.query.get("pretty"))
        resp = web.Response(body=codec.encode(obj, pretty), status=status, content_type="application/json")
        if ctx is not None and ctx.warnings:
            resp.headers["Warning"] = ", ".join(
                '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in ctx.warnings
            )
        return resp

    def _wants_table(self, request: web.Request) -> bool:
        return TABLE_MEDIA in request.headers.get("Accept", "")

    def _respond_objects(
        self, request: web.Request, info: ResourceInfo, obj: Obj, list_meta: Obj | None = None
    ) -> web.Response:
        if self._wants_table(request):
            include = request.query.get("includeObject") or "Metadata"
            items = obj["items"] if list_meta is not None else [obj]
            table = tables.to_table(
                info,
                items,
                include,
                list_meta
                if list_meta is not None
                else {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
            )
            return self.respond(request, table)
        return self.respond(request, obj)

    # -- list ----------------------------------------------------------------------------------------

    def _matcher(self, request: web.Request, info: ResourceInfo) -> Matcher | None:
        q = request.query
        return combine(label_matcher(q.get("labelSelector")), field_matcher(info, q.get("fieldSelector")))

    async def _list(self, request: web.Request, info: ResourceInfo, namespace: str) -> web.StreamResponse:
        q = request.query
        matcher = self._matcher(request, info)
        rv = q.get("resourceVersion")
        match = q.get("resourceVersionMatch") or ""
        limit = _int_param(q, "limit") or 0
        cont = q.get("continue") or ""
        if match and match not in ("Exact", "NotOlderThan"):
            raise errors.bad_request(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                '"Exact", "NotOlderThan", ""'
            )
        if match and not rv:
            raise errors.bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                "resourceVersion is provided"
            )
        if cont and (rv or match):
            raise errors.bad_request(
                "resourceVersion: Forbidden: specifying resource version is not allowed when using continue"
            )
        if match == "Exact" and rv == "0":
            raise errors.bad_request(
                'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is '
                'forbidden for resourceVersion "0"'
            )
        key_prefix = info.storage_prefix(namespace or None)
        items: list[Any]
        if cont or match == "Exact" or (limit > 0 and rv != "0" and match != "NotOlderThan"):
            items, list_meta = await self._list_from_store(
                info, key_prefix, matcher, limit, cont, _rv_param(rv) if rv else 0
            )
        else:
            target = await self.store.current_revision() if not rv else _rv_param(rv)
            try:
                await self.caches.wait_for(target)
            except errors.StatusError:
                if rv:
                    raise
                # A consistent list the cache cannot catch up with in time is read from the store.
                target = -1
            if target >= 0:
                cache = self.caches.cache(info.storage_prefix())
                if self._wants_table(request) or _is_true(q.get("pretty")):
                    items = cache.list(key_prefix, matcher)
                else:  # the cached bytes go into the reply as they are
                    items = [orjson.Fragment(raw) for raw in cache.list_encoded(key_prefix, matcher)]
                list_meta = {"resourceVersion": str(self.caches.revision)}
            else:
                items, list_meta = await self._list_from_store(info, key_prefix, matcher, 0, "", 0)
        out = {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta, "items": items}
        return self._respond_objects(request, info, out, list_meta)

    async def _list_from_store(
        self,
        info: ResourceInfo,
        key_prefix: str,
        matcher: Matcher | None,
        limit: int,
        cont: str,
        revision: int,
    ) -> tuple[list[Obj], Obj]:
        after: str | None = None
        if cont:
            revision, after = decode_continue(cont, key_prefix)
        items: list[Obj] = []
        more = False
        last_key = ""
        while True:
            want = limit - len(items) if limit else 0
            try:
                res = await self.store.list(key_prefix, limit=want, continue_after=after, revision=revision)
            except Compacted:
                raise errors.gone(_CONTINUE_EXPIRED if cont else _LIST_EXPIRED) from None
            revision = res.revision
            for kv in res.items:
                obj = decode(kv)
                if matcher is None or matcher(obj):
                    items.append(obj)
                last_key = kv.key
            more = res.more
            if not more or (limit and len(items) >= limit) or not res.items:
                break
            after = last_key
        meta: Obj = {"resourceVersion": str(revision)}
        if more and limit:
            meta["continue"] = encode_continue(revision, last_key, key_prefix)
        return items, meta

    # -- watch ---------------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, info: ResourceInfo, namespace: str, name: str
    ) -> web.StreamResponse:
        q = request.query
        matcher = self._matcher(request, info)
        if name and not q.get("fieldSelector"):
            matcher = combine(matcher, lambda o: o["metadata"].get("name") == name)
        rv = q.get("resourceVersion") or ""
        send_initial = q.get("sendInitialEvents")
        bookmarks = _is_true(q.get("allowWatchBookmarks"))
        if send_initial is not None and q.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.bad_request(
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch "
                "unless resourceVersionMatch is set to NotOlderThan"
            )
        initial_events = _is_true(send_initial) if send_initial is not None else rv in ("", "0")
        if _is_true(send_initial) and not bookmarks:
            raise errors.bad_request(
                "allowWatchBookmarks: Forbidden: allowWatchBookmarks must be set when "
                "sendInitialEvents is set"
            )
        timeout = _int_param(q, "timeoutSeconds")
        if timeout is None or timeout <= 0:
            timeout = random.randint(1800, 3600)
        from_rev: int | None = None
        if rv not in ("", "0"):
            from_rev = _rv_param(rv)
            await self.caches.wait_for(from_rev)
        elif rv == "" and _is_true(send_initial):
            await self.caches.wait_for(await self.store.current_revision())
        cache = self.caches.cache(info.storage_prefix())
        try:
            w = cache.watch(
                None if initial_events else from_rev,
                self.caches.revision,
                info.storage_prefix(namespace or None),
                matcher,
                initial_events,
            )
        except errors.StatusError as e:
            if e.code != 410:
                raise
            # As Kubernetes' watch cache: a 200 stream whose only event is the 410 Status.
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(orjson.dumps({"type": "ERROR", "object": e.to_status()}) + b"\n")
            await resp.write_eof()
            return resp
        if _is_true(send_initial):
            w.push(self._bookmark(info, self.caches.revision, initial_end=True), self.caches.revision)

        # kubectl get -w asks for Table rows; those events are wrapped per watcher, others shared as is.
        as_table = self._wants_table(request)
        include = request.query.get("includeObject") or "Metadata"
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval
        self.open_watches += 1
        gauge = self.metrics.watches.labels(info.group, info.plural) if self.metrics is not None else None
        if gauge is not None:
            gauge.inc()
        try:
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                # Wake at least every few seconds to notice a client that went away while all was quiet.
                wait = min(deadline - now, _IDLE_CHECK)
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0))
                await w.wait(wait)
                if request.transport is None or request.transport.is_closing():
                    break
                lines = w.drain()
                if lines and as_table:
                    lines = [self._table_line(info, line, include) for line in lines]
                if lines:
                    await resp.write(b"".join(lines))
                if w.closed:
                    break
                if bookmarks and loop.time() >= next_bookmark:
                    await resp.write(self._bookmark(info, self.caches.revision))
                    next_bookmark = loop.time() + self.bookmark_interval
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            w.close()
            self.open_watches -= 1
            if gauge is not None:
                gauge.dec()
        return resp

    def _table_line(self, info: ResourceInfo, line: bytes, include: str) -> bytes:
        event = orjson.loads(line)
        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
            obj = event["object"]
            rv = obj.get("metadata", {}).get("resourceVersion", "")
            event["object"] = tables.to_table(info, [obj], include, {"resourceVersion": rv})
        return orjson.dumps(event) + b"\n"

    def _bookmark(self, info: ResourceInfo, revision: int, initial_end: bool = False) -> bytes:
        meta: Obj = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return (
            orjson.dumps(
                {
                    "type": "BOOKMARK",
                    "object": {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta},
                }
            )
            + b"\n"
        )

    # -- patch and subresources ----------------------------------------------------------------------

    async def _patch(
        self,
        request: web.Request,
        info: ResourceInfo,
        namespace: str,
        name: str,
        sub: str,
        ctx: RequestContext,
    ) -> web.Response:
        patch_type, patch = codec.decode_patch(request[BODY], request.headers.get("Content-Type"))
        force = _is_true(request.query.get("force"))
        if force and patch_type != APPLY_PATCH:
            raise errors.bad_request("force: Forbidden: may not be specified for non-apply patch")
        out, created = await self.registry.patch(info, namespace, name, patch_type, patch, ctx, force, sub)
        return self.respond(request, out, 201 if created else 200, ctx)

    async def _subresource(
        self,
        request: web.Request,
        info: ResourceInfo,
        verb: str,
        namespace: str,
        name: str,
        sub: str,
        ctx: RequestContext,
    ) -> web.StreamResponse:
        reg = self.registry
        if sub in ("status", "finalize", "approval"):
            if verb == "get" and sub != "finalize":
                return self.respond(request, await reg.get(info, namespace, name))
            if verb == "update":
                body = self._decode_body(request, info, ctx)
                out, _ = await reg.update(info, namespace, name, body, ctx, sub)
                return self.respond(request, out, 200, ctx)
            if verb == "patch" and sub != "finalize":
                return await self._patch(request, info, namespace, name, sub, ctx)
        elif sub == "scale" and (info.group, info.plural) in subresources.SCALABLE:
            if verb == "get":
                return self.respond(request, await subresources.get_scale(reg, info, namespace, name))
            if verb == "update":
                body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
                out = await subresources.update_scale(reg, info, namespace, name, ctx, scale=body)
                return self.respond(request, out, 200, ctx)
            if verb == "patch":
                patch = codec.decode_patch(request[BODY], request.headers.get("Content-Type"))
                out = await subresources.update_scale(reg, info, namespace, name, ctx, patch=patch)
                return self.respond(request, out, 200, ctx)
        elif sub == "binding" and info.plural == "pods" and verb == "create":
            body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
            return self.respond(request, await subresources.bind(reg, namespace, name, body, ctx), 201)
        elif sub == "eviction" and info.plural == "pods" and verb == "create":
            body = codec.decode_object(request[BODY], request.headers.get("Content-Type"))
            return self.respond(request, await subresources.evict(reg, namespace, name, body, ctx), 201)
        elif sub in ("log", "exec", "attach", "portforward") and info.plural == "pods" and info.group == "" \
                and self.kubelet_proxy is not None and verb in ("get", "create"):
            return await self.kubelet_proxy.handle(request, namespace, name, sub)  # type: ignore[no-any-return]
        elif sub == "proxy" and info.plural == "nodes" and info.group == "" \
                and self.kubelet_proxy is not None:
            return await self.kubelet_proxy.handle_node(request, name)  # type: ignore[no-any-return]
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
