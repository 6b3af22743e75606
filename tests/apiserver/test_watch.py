"""Watches served from the watch cache: resume from a resourceVersion, 410 and relist, selector
transitions, bookmarks, timeouts, slow watchers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from pyk8s.apiserver import watch_cache
from pyk8s.store.protocol import Event, EventType, KeyValue
from tests.apiserver.conftest import Server

NS = "/api/v1/namespaces/default"


class WatchStream:
    """One raw watch request; events are read with a deadline."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, wait: float = 5) -> dict[str, Any] | None:
        line = await asyncio.wait_for(self.resp.content.readline(), wait)
        return orjson.loads(line) if line else None

    async def events(self, n: int, wait: float = 5) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            ev = await self.next(wait)
            assert ev is not None, f"stream ended after {out}"
            out.append(ev)
        return out


async def open_watch(server: Server, path: str, **params: Any) -> AsyncIterator[WatchStream]:
    params.setdefault("watch", "true")
    params = {k: v for k, v in params.items() if v is not None}
    async with server.session.get(server.url + path, params=params) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        yield WatchStream(resp)


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


async def create_cm(server: Server, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    status, body = await server.request(
        "POST", f"{NS}/configmaps", {"metadata": {"name": name, "labels": labels or {}}}
    )
    assert status == 201
    return body  # type: ignore[no-any-return]


async def test_watch_from_resource_version_replays_then_streams(server: Server) -> None:
    _, listed = await server.request("GET", f"{NS}/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    a = await create_cm(server, "a")
    await server.request("DELETE", f"{NS}/configmaps/a")
    async for w in open_watch(server, f"{NS}/configmaps", resourceVersion=rv):
        events = await w.events(2)
        assert names(events) == [("ADDED", "a"), ("DELETED", "a")]
        assert events[0]["object"]["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
        assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
        await create_cm(server, "b")
        assert names(await w.events(1)) == [("ADDED", "b")]


async def test_watch_without_resource_version_starts_with_the_current_state(server: Server) -> None:
    await create_cm(server, "old")
    async for w in open_watch(server, f"{NS}/configmaps"):
        assert names(await w.events(1)) == [("ADDED", "old")]
        await create_cm(server, "new")
        assert names(await w.events(1)) == [("ADDED", "new")]


async def test_label_selector_transitions(server: Server) -> None:
    _, listed = await server.request("GET", f"{NS}/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    async for w in open_watch(server, f"{NS}/configmaps", resourceVersion=rv, labelSelector="app=web"):
        await create_cm(server, "ignored", {"app": "db"})
        await create_cm(server, "x", {"app": "web"})
        assert names(await w.events(1)) == [("ADDED", "x")]
        await server.request(
            "PATCH",
            f"{NS}/configmaps/x",
            {"metadata": {"labels": {"app": "db"}}},
            content_type="application/merge-patch+json",
        )
        left = (await w.events(1))[0]
        assert (left["type"], left["object"]["metadata"]["labels"]) == ("DELETED", {"app": "web"})
        await server.request(
            "PATCH",
            f"{NS}/configmaps/ignored",
            {"metadata": {"labels": {"app": "web"}}},
            content_type="application/merge-patch+json",
        )
        assert names(await w.events(1)) == [("ADDED", "ignored")]
        await server.request(
            "PATCH",
            f"{NS}/configmaps/ignored",
            {"data": {"k": "v"}},
            content_type="application/merge-patch+json",
        )
        assert names(await w.events(1)) == [("MODIFIED", "ignored")]


async def test_watch_a_single_object_by_name(server: Server) -> None:
    await create_cm(server, "one")
    await create_cm(server, "two")
    async for w in open_watch(server, f"{NS}/configmaps", fieldSelector="metadata.name=two"):
        assert names(await w.events(1)) == [("ADDED", "two")]
        await server.request(
            "PATCH", f"{NS}/configmaps/one", {"data": {"a": "1"}}, content_type="application/merge-patch+json"
        )
        await server.request(
            "PATCH", f"{NS}/configmaps/two", {"data": {"a": "1"}}, content_type="application/merge-patch+json"
        )
        assert names(await w.events(1)) == [("MODIFIED", "two")]
    async for w in open_watch(server, "/api/v1/watch/namespaces/default/configmaps/one", watch=None):
        assert names(await w.events(1)) == [("ADDED", "one")]


async def test_too_old_resource_version_is_410_then_relist_works(server: Server) -> None:
    server.api.caches.cache("/registry/core/configmaps/").ring_size = 3
    first = await create_cm(server, "c0")
    for i in range(1, 6):
        await create_cm(server, f"c{i}")
    async for w in open_watch(
        server, f"{NS}/configmaps", resourceVersion=first["metadata"]["resourceVersion"]
    ):
        ev = await w.next()
        assert ev is not None and ev["type"] == "ERROR"
        assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
        assert ev["object"]["message"].startswith(
            f"too old resource version: {first['metadata']['resourceVersion']}"
        )
        assert await w.next() is None

    cfg = client.Configuration()
    cfg.host = server.url
    with client.ApiClient(cfg) as api_client:
        core = client.CoreV1Api(api_client)

        def watch_then_relist() -> tuple[int, list[str]]:
            try:
                for _ in watch.Watch().stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=first["metadata"]["resourceVersion"],
                    timeout_seconds=5,
                ):
                    pass
            except ApiException as e:
                listed = core.list_namespaced_config_map("default")
                return e.status, [c.metadata.name for c in listed.items]
            return 0, []

        status, relisted = await asyncio.to_thread(watch_then_relist)
    assert status == 410
    assert relisted == [f"c{i}" for i in range(6)]


async def test_official_client_watch_resumes_from_resource_version(server: Server) -> None:
    cfg = client.Configuration()
    cfg.host = server.url
    _, listed = await server.request("GET", f"{NS}/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    for i in range(3):
        await create_cm(server, f"w{i}")
    with client.ApiClient(cfg) as api_client:
        core = client.CoreV1Api(api_client)

        def collect() -> list[tuple[str, str]]:
            w = watch.Watch()
            out = []
            for ev in w.stream(
                core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
            ):
                out.append((ev["type"], ev["object"].metadata.name))
                if len(out) == 3:
                    w.stop()
            return out

        assert await asyncio.to_thread(collect) == [("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2")]


async def test_bookmarks_and_timeout(server: Server) -> None:
    await create_cm(server, "bm")
    _, listed = await server.request("GET", f"{NS}/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    async for w in open_watch(
        server, f"{NS}/configmaps", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="1"
    ):
        ev = await w.next()
        assert ev is not None and ev["type"] == "BOOKMARK"
        assert ev["object"]["kind"] == "ConfigMap" and int(
            ev["object"]["metadata"]["resourceVersion"]
        ) >= int(rv)
        while (ev := await w.next(wait=5)) is not None:
            assert ev["type"] == "BOOKMARK"
    assert loop.time() - started < 5  # the stream ended by itself at timeoutSeconds


async def test_send_initial_events(server: Server) -> None:
    await create_cm(server, "init")
    async for w in open_watch(
        server,
        f"{NS}/configmaps",
        sendInitialEvents="true",
        allowWatchBookmarks="true",
        resourceVersionMatch="NotOlderThan",
    ):
        added, bookmark = await w.events(2)
        assert names([added]) == [("ADDED", "init")]
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_across_namespaces_and_pods(server: Server) -> None:
    await server.request("POST", "/api/v1/namespaces", {"metadata": {"name": "two"}})
    _, listed = await server.request("GET", "/api/v1/configmaps")
    async for w in open_watch(
        server, "/api/v1/configmaps", resourceVersion=listed["metadata"]["resourceVersion"]
    ):
        await create_cm(server, "d1")
        await server.request("POST", "/api/v1/namespaces/two/configmaps", {"metadata": {"name": "t1"}})
        events = await w.events(2)
        assert [(e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in events] == [
            ("default", "d1"),
            ("two", "t1"),
        ]


async def test_a_slow_watcher_is_closed_not_waited_on(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_cache, "WATCHER_BUFFER", 4)
    cache = server.api.caches.cache("/registry/core/configmaps/")
    slow = cache.watch(None, server.api.caches.revision, "/registry/core/configmaps/", None, False)
    fast = cache.watch(None, server.api.caches.revision, "/registry/core/configmaps/", None, False)
    for i in range(6):
        await create_cm(server, f"s{i}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(fast.buffer) == 0:  # the fast watcher drains as it goes
            assert loop.time() < deadline
            await asyncio.sleep(0.005)
        fast.drain()
    assert slow.closed and slow.overflowed
    assert not fast.closed
    assert slow not in cache.watchers and fast in cache.watchers
    fast.close()


def test_events_are_encoded_once_and_shared() -> None:
    ev = watch_cache.CacheEvent(
        "ADDED", 5, "/registry/core/configmaps/d/a", orjson.dumps({"metadata": {"name": "a"}}), None
    )
    assert ev.line() is ev.line()
    assert orjson.loads(ev.line()) == {"type": "ADDED", "object": {"metadata": {"name": "a"}}}


def test_a_modified_object_leaving_a_selection_is_sent_deleted_in_its_old_state_at_the_new_version() -> None:
    old = {"metadata": {"name": "a", "labels": {"app": "x"}, "resourceVersion": "4"}}
    new = {"metadata": {"name": "a", "labels": {"app": "y"}, "resourceVersion": "5"}}
    ev = watch_cache.CacheEvent(
        "MODIFIED", 5, "/registry/core/configmaps/d/a", orjson.dumps(new), orjson.dumps(old)
    )
    assert orjson.loads(ev.line("DELETED")) == {
        "type": "DELETED",
        "object": {"metadata": {"name": "a", "labels": {"app": "x"}, "resourceVersion": "5"}},
    }
    assert orjson.loads(ev.line("ADDED")) == {"type": "ADDED", "object": new}


def test_cached_objects_are_held_as_bytes_and_read_as_fresh_copies() -> None:
    cache = watch_cache.ResourceCache("/registry/core/configmaps/", 0)
    key = "/registry/core/configmaps/d/a"
    value = orjson.dumps({"metadata": {"name": "a"}, "data": {"k": "v"}})
    cache.apply(Event(EventType.CREATE, KeyValue(key, value, 7, 7), None))
    # Nothing the cache keeps for the object is traversed by the garbage collector.
    assert not gc.is_tracked(cache.objects.raw[key])
    assert all(not gc.is_tracked(ev.raw) and ev._obj is None for ev in cache.ring)
    first = cache.objects[key]
    assert first == {"metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v"}}
    first["data"]["k"] = "changed"
    assert cache.objects[key]["data"] == {"k": "v"}  # a reader's change never reaches the cache


async def test_open_watches_are_counted_in_metrics(server: Server) -> None:
    async def gauge() -> str:
        async with server.session.get(server.url + "/metrics") as resp:
            text = await resp.text()
        lines = [
            line
            for line in text.splitlines()
            if line.startswith('apiserver_registered_watchers{group="",resource="configmaps"}')
        ]
        return lines[0].split()[-1] if lines else "absent"

    await create_cm(server, "m")
    async for w in open_watch(server, f"{NS}/configmaps"):
        await w.events(1)
        assert await gauge() == "1.0"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await gauge() != "0.0":  # the server notices the closed stream on its next write or wake-up
        assert loop.time() < deadline, "the watch was never counted out"
        await create_cm(server, f"poke{int(loop.time() * 1000)}")
        await asyncio.sleep(0.02)


async def test_cache_follows_a_burst_of_writes_without_gap_through_a_small_store_buffer() -> None:
    from pyk8s.store.memory import MemoryStore

    store = MemoryStore(watch_buffer=4)
    caches = watch_cache.WatchCacheSet(store)
    await caches.start()
    try:
        for i in range(200):  # far more than the store buffers per watcher: overflow resumes, never skips
            await store.create(f"/registry/core/configmaps/default/k{i:03}", b'{"metadata":{"name":"x"}}')
        await caches.wait_for(await store.current_revision(), max_wait=5)
        cache = caches.cache("/registry/core/configmaps/")
        assert len(cache.objects) == 200
        assert [e.revision for e in cache.ring] == list(range(1, 201))  # no gap, no duplicate
    finally:
        await caches.stop()
        await store.close()


async def test_cache_stays_complete_across_compaction() -> None:
    from pyk8s.store.memory import MemoryStore

    store = MemoryStore(watch_buffer=4)
    caches = watch_cache.WatchCacheSet(store)
    await caches.start()
    try:
        cache = caches.cache("/registry/core/configmaps/")
        w = cache.watch(None, caches.revision, "/registry/core/configmaps/", None, False)
        for i in range(50):
            await store.create(f"/registry/core/configmaps/default/c{i:03}", b'{"metadata":{"name":"x"}}')
        # Compact past what the cache has read: its resumed watch is Compacted and it relists.
        await store.compact(await store.current_revision())
        await caches.wait_for(await store.current_revision(), max_wait=5)
        assert len(caches.cache("/registry/core/configmaps/").objects) == 50
        assert w.closed or len(w.buffer) == 50  # relisted (watchers closed) or never fell behind
    finally:
        await caches.stop()
        await store.close()
