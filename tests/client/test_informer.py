"""Shared informers against a real API server: sync, ordered events, indexes, re-watch, relist on 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, owner_uid_index
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedDecoder, SharedInformerFactory
from pyk8s.client.transport import HTTPTransport
from tests.client.conftest import CONFIGMAPS, NAMESPACES, Server, cm, eventually, start_server


class Recorder:
    """Every handler call as (event, name[, …]); checks that no two calls overlap."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self._inside = False

    def _enter(self) -> None:
        assert not self._inside, "handlers were called concurrently"

    async def on_add(self, obj: dict[str, Any]) -> None:
        self._enter()
        self._inside = True
        await asyncio.sleep(0)  # give a concurrent call the chance to show itself
        self.events.append(("add", obj["metadata"]["name"]))
        self._inside = False

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._enter()
        assert int(old["metadata"]["resourceVersion"]) < int(new["metadata"]["resourceVersion"])
        self.events.append(("update", new["metadata"]["name"], new["data"]["k"]))

    def on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self._enter()
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key))
        else:
            self.events.append(("delete", obj["metadata"]["name"]))


@pytest.fixture
async def factory(client: Client) -> AsyncIterator[SharedInformerFactory]:
    f = SharedInformerFactory(client)
    yield f
    await f.stop()


async def test_sync_events_in_order_and_indexes(client: Client, factory: SharedInformerFactory) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "other"}})
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "uid-1", "controller": True}
    owned = cm("owned")
    owned["metadata"]["ownerReferences"] = [owner]  # type: ignore[index]
    await client.create(CONFIGMAPS, owned)
    await client.create(CONFIGMAPS, cm("plain", app="web"))
    await client.create(CONFIGMAPS, cm("elsewhere", "other"))

    inf = factory.informer(CONFIGMAPS)
    assert factory.informer(CONFIGMAPS) is inf
    assert factory.informer(CONFIGMAPS, "other") is not inf
    inf.add_index(OWNER_UID_INDEX, owner_uid_index)
    rec = Recorder()
    inf.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    factory.start()
    async with asyncio.timeout(5):
        await factory.wait_for_sync()
    assert inf.has_synced() and factory.has_synced()
    assert sorted(rec.events) == [("add", "elsewhere"), ("add", "owned"), ("add", "plain")]

    lister = inf.lister
    assert lister.get("plain", "default") is not None
    assert [o["metadata"]["name"] for o in lister.list("other")] == ["elsewhere"]
    assert [o["metadata"]["name"] for o in lister.list(selector="app=web")] == ["plain"]
    assert [o["metadata"]["name"] for o in lister.by_index(OWNER_UID_INDEX, "uid-1")] == ["owned"]
    assert lister.by_index("namespace", "other")[0]["metadata"]["name"] == "elsewhere"

    rec.events.clear()
    await client.create(CONFIGMAPS, cm("new"))
    await client.patch(CONFIGMAPS, "new", {"data": {"k": "1"}}, "merge", "default")
    await client.patch(CONFIGMAPS, "new", {"data": {"k": "2"}}, "merge", "default")
    await client.delete(CONFIGMAPS, "owned", "default")
    await client.delete(CONFIGMAPS, "new", "default")
    await eventually(lambda: len(rec.events) == 5, what="five events")
    assert rec.events == [("add", "new"), ("update", "new", "1"), ("update", "new", "2"),
                          ("delete", "owned"), ("delete", "new")]
    assert lister.by_index(OWNER_UID_INDEX, "uid-1") == []
    assert lister.get("new", "default") is None
    assert inf.lists == 1

    # A handler added late first hears of every cached object.
    late = Recorder()
    inf.add_handler(late.on_add)
    await eventually(lambda: len(late.events) == 2, what="replay to a late handler")
    assert sorted(late.events) == [("add", "elsewhere"), ("add", "plain")]


async def test_rewatches_after_server_side_timeout_without_relisting(client: Client) -> None:
    factory = SharedInformerFactory(client, watch_timeout=(1, 1))
    inf = factory.informer(CONFIGMAPS, "default")
    rec = Recorder()
    inf.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    factory.start()
    try:
        await eventually(lambda: inf.watches >= 3, within=10, what="two re-watches")
        await client.create(CONFIGMAPS, cm("after"))
        await eventually(lambda: rec.events == [("add", "after")], what="the event after re-watching")
        assert inf.lists == 1
    finally:
        await factory.stop()


async def test_relists_on_410_when_its_version_fell_out_of_the_window() -> None:
    # No bookmarks in this test: they would carry the informer's resourceVersion forward.
    srv = await start_server(bookmark_interval=3600)
    client = Client(HTTPTransport(srv.url))
    factory = SharedInformerFactory(client, watch_timeout=(1, 1))
    try:
        srv.api.caches.cache("/registry/core/configmaps/").ring_size = 2
        await client.create(CONFIGMAPS, cm("mine", app="x"))
        inf = factory.informer(CONFIGMAPS, "default", label_selector="app=x")
        rec = Recorder()
        inf.add_handler(rec.on_add, rec.on_update, rec.on_delete)
        factory.start()
        async with asyncio.timeout(5):
            await factory.wait_for_sync()
        # Writes the selector does not match push the informer's version out of the server's window;
        # its next watch (after the 1 s server timeout) is answered 410 and it lists again.
        for i in range(4):
            await client.create(CONFIGMAPS, cm(f"noise{i}"))
        await eventually(lambda: inf.lists >= 2, within=10, what="a relist")
        await client.patch(CONFIGMAPS, "mine", {"data": {"k": "after-relist"}}, "merge", "default")
        await eventually(lambda: ("update", "mine", "after-relist") in rec.events, what="events after relist")
        assert rec.events == [("add", "mine"), ("update", "mine", "after-relist")]
    finally:
        await factory.stop()
        await client.close()
        await srv.stop()
        await srv.store.close()


async def test_api_server_restart_relists_and_reports_missed_deletes(server: Server, client: Client,
                                                                      factory: SharedInformerFactory) -> None:
    await client.create(CONFIGMAPS, cm("kept"))
    await client.create(CONFIGMAPS, cm("gone"))
    inf = factory.informer(CONFIGMAPS, "default")
    rec = Recorder()
    inf.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    factory.start()
    async with asyncio.timeout(5):
        await factory.wait_for_sync()
    rec.events.clear()

    await server.stop()
    # While the server is down: a delete and an update the informer cannot see as events.
    await server.store.delete(CONFIGMAPS.storage_key("default", "gone"))
    kv = await server.store.get(CONFIGMAPS.storage_key("default", "kept"))
    await server.store.update(kv.key, kv.value.replace(b'"v"', b'"changed"'), kv.mod_revision)
    await server.start()

    await eventually(lambda: len(rec.events) == 2, within=15, what="the relist's events")
    assert rec.events == [("tombstone", "default/gone"), ("update", "kept", "changed")]
    assert inf.lists == 2
    assert [o["metadata"]["name"] for o in inf.lister.list()] == ["kept"]


async def test_resync_reports_every_object_again(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("a"))
    factory = SharedInformerFactory(client, resync_period=0.05)
    inf = factory.informer(CONFIGMAPS, "default")
    resynced: list[tuple[str, bool]] = []
    inf.add_handler(on_update=lambda old, new: resynced.append((new["metadata"]["name"], old is new)))
    factory.start()
    try:
        await eventually(lambda: len(resynced) >= 2, what="two resyncs")
        assert set(resynced) == {("a", True)}
    finally:
        await factory.stop()


async def test_stopping_closes_the_watch(server: Server, client: Client) -> None:
    factory = SharedInformerFactory(client)
    inf = factory.informer(CONFIGMAPS, "default")
    factory.start()
    await eventually(lambda: inf.watches == 1 and server.api.open_watches == 1, what="the watch open")
    await factory.stop()
    assert not inf.running
    await eventually(lambda: server.api.open_watches == 0, what="the watch closed on the server")


async def test_bookmarks_carry_the_version_forward(client: Client, factory: SharedInformerFactory) -> None:
    inf = factory.informer(CONFIGMAPS, "default")
    factory.start()
    async with asyncio.timeout(5):
        await factory.wait_for_sync()
    # A write to another resource: no configmap event, but the server's bookmarks (every 0.2 s here)
    # move the informer past it, so a later re-watch starts from a recent version.
    ns = await client.create(NAMESPACES, {"metadata": {"name": "elsewhere"}})
    newer = int(ns["metadata"]["resourceVersion"])
    await eventually(lambda: int(inf.resource_version) >= newer, what="a bookmark")
    assert len(inf.indexer) == 0


async def test_informers_of_one_process_share_each_watched_object(server: Server, client: Client) -> None:
    """The scheduler and the controller manager each watch pods over their own connection in one process:
    an event both receive is decoded once and the same object held by both caches."""
    other = Client(HTTPTransport(server.url))
    first, second = SharedInformerFactory(client), SharedInformerFactory(other)
    try:
        caches = [f.informer(CONFIGMAPS) for f in (first, second)]
        for f in (first, second):
            f.start()
            await f.wait_for_sync()
        await client.create(CONFIGMAPS, cm("watched"))
        await eventually(lambda: all(c.lister.get("watched", "default") for c in caches))
        held = [c.lister.get("watched", "default") for c in caches]
        assert held[0] is not None and held[0]["metadata"]["name"] == "watched"
        assert held[0] is held[1]
    finally:
        await first.stop()
        await second.stop()
        await other.close()


def test_shared_decoder_answers_a_repeated_line_with_the_same_event() -> None:
    decode = SharedDecoder(limit=2)
    line = b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}'
    event = decode(line)
    assert event == {"type": "ADDED", "object": {"metadata": {"name": "a"}}}
    assert decode(bytes(line)) is event  # equal bytes, another object: as two connections read them
    decode(b'{"n":1}')
    decode(b'{"n":2}')  # past the limit: the memory starts again
    again = decode(line)
    assert again == event and again is not event
