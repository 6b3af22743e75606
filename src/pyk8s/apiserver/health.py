"""/healthz, /livez and /readyz with Kubernetes' plain-text answers (`ok`, `?verbose` per-check lines)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from pyk8s.apiserver.watch_cache import WatchCacheSet
from pyk8s.store.errors import KeyNotFound
from pyk8s.store.protocol import Store

Check = tuple[str, Callable[[], Awaitable[bool]]]


def checks(store: Store, caches: WatchCacheSet, ready: bool) -> list[Check]:
    async def ping() -> bool:
        return True

    async def etcd() -> bool:
        # A real read, as Kubernetes' etcd check GETs a key: KeyNotFound is an answer, so healthy.
        try:
            await asyncio.wait_for(store.get("/health"), 2.0)
        except KeyNotFound:
            return True
        except Exception:
            return False
        return True

    async def cache_synced() -> bool:
        return caches.synced.is_set()

    out: list[Check] = [("ping", ping), ("etcd", etcd)]
    if ready:
        out.append(("informer-sync", cache_synced))
    return out


def handler(
    name: str, store: Store, caches: WatchCacheSet
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        only = request.match_info.get("check", "")
        selected = [(n, c) for n, c in checks(store, caches, name == "readyz") if not only or n == only]
        if not selected:
            return web.Response(
                text=f"404 page not found: no check {only!r}\n", status=404, content_type="text/plain"
            )
        results = [(n, await c()) for n, c in selected]
        if only:
            ok = results[0][1]
            return web.Response(
                text="ok" if ok else f"internal server error: {only} failed\n",
                status=200 if ok else 500,
                content_type="text/plain",
            )
        excluded = set(request.query.getall("exclude", []))
        failed = any(not ok for n, ok in results if n not in excluded)
        if not failed and "verbose" not in request.query:
            return web.Response(text="ok", content_type="text/plain")
        lines = []
        for n, ok in results:
            if n in excluded:
                lines.append(f"[+]{n} excluded: ok")
            else:
                lines.append(f"[+]{n} ok" if ok else f"[-]{n} failed: reason withheld")
        lines.append(f"{name} check failed" if failed else f"{name} check passed")
        return web.Response(
            text="\n".join(lines) + "\n", status=500 if failed else 200, content_type="text/plain"
        )

    return handle
