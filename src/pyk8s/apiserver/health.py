"""/healthz, /livez and /readyz with Kubernetes' plain-text answers (`ok`, `?verbose` per-check lines)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from pyk8s.apiserver.watch_cache import WatchCacheSet
from pyk8s.store.protocol import Store

Check = tuple[str, Callable[[], Awaitable[bool]]]


def checks(store: Store, caches: WatchCacheSet, ready: bool) -> list[Check]:
    async def ping() -> bool:
        return True

    async def etcd() -> bool:
        try:
            await asyncio.wait_for(store.current_revision(), 2.0)
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
        results = [(n, await c()) for n, c in checks(store, caches, name == "readyz")]
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
