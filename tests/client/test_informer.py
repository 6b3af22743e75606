"""Shared informers against a real API server: sync, ordered events, indexes, re-watch, relist on 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyk8s.client.cache import OWNER_UID_INDEX, DeletedFinalStateUnknown, owner_uid_index
from pyk8s.client.client import Client
from pyk8s.client.informer import HANDLER_OWNER, SharedInformerFactory
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


async def test_a_term_s_handlers_are_removed_and_the_informer_serves_on(client: Client,
                                                                      factory: SharedInformerFactory) -> None:
    """The controller manager's handlers belong to its leadership term: when the term ends they are
    removed, while the informer goes on serving the scheduler's (process-wide) handler."""
    process, term_a, term_b = Recorder(), Recorder(), Recorder()
    inf = factory.informer(CONFIGMAPS)
    inf.add_handler(process.on_add)
    await client.create(CONFIGMAPS, cm("before"))
    factory.start()
    await factory.wait_for_sync()

    async def term(recorder: Recorder) -> object:
        owner = object()
        HANDLER_OWNER.set(owner)  # as ControllerManager does at the start of a term (its own task)
        inf.add_handler(recorder.on_add)
        await factory.wait_for_sync()  # the handler has been told about the cache
        return owner

    owner_a = await asyncio.create_task(term(term_a))
    assert term_a.events == [("add", "before")]
    await client.create(CONFIGMAPS, cm("during"))
    await eventually(lambda: ("add", "during") in term_a.events)

    factory.remove_handlers(owner_a)
    await asyncio.create_task(term(term_b))  # the next term replays the cache its informer kept current
    assert term_b.events == [("add", "before"), ("add", "during")]
    await client.create(CONFIGMAPS, cm("after"))
    await eventually(lambda: ("add", "after") in term_b.events and ("add", "after") in process.events)
    assert term_a.events == [("add", "before"), ("add", "during")]
    assert process.events == [("add", "before"), ("add", "during"), ("add", "after")]
    assert inf.running and inf.lists == 1


async def test_a_handler_removed_during_its_replay_is_never_added(client: Client,
                                                                 factory: SharedInformerFactory) -> None:
    for i in range(20):
        await client.create(CONFIGMAPS, cm(f"c{i}"))
    inf = factory.informer(CONFIGMAPS)
    process = Recorder()
    inf.add_handler(process.on_add)
    factory.start()
    await factory.wait_for_sync()
    seen: list[str] = []
    owner = object()

    async def slow_add(obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        await asyncio.sleep(0.01)

    async def add() -> None:
        HANDLER_OWNER.set(owner)
        inf.add_handler(slow_add)

    await asyncio.create_task(add())
    await eventually(lambda: len(seen) >= 2)
    factory.remove_handlers(owner)
    await factory.wait_for_sync()  # the replay has ended
    replayed = len(seen)
    assert replayed < 20
    await client.create(CONFIGMAPS, cm("later"))
    # Handlers hear an event one after another: once the process-wide one has, an attached one had.
    await eventually(lambda: ("add", "later") in process.events)
    assert "later" not in seen and len(seen) == replayed
