"""Registry.patch starts from the watch cache's copy instead of reading the store (as Kubernetes'
GuaranteedUpdate does), and a copy that lags the store never costs a write: the update is a
compare-and-swap on the copy's revision, and whatever fails on a copy is tried again from the store.

A lagging cache is made by putting back, under the object's key, the bytes the cache held for an older
version — the state it is in while the store watch has not delivered the newer one yet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.patch import JSON_PATCH, MERGE_PATCH
from pyk8s.apiserver.interfaces import UserInfo
from pyk8s.apiserver.registry import DeleteOptions, RequestContext
from pyk8s.store.protocol import KeyValue
from tests.support.apiserver import CONFIGMAPS, Server, api_server
from tests.support.poll import eventually

Obj = dict[str, Any]
KEY = CONFIGMAPS.storage_key("default", "cm")


def _ctx(dry_run: bool = False) -> RequestContext:
    return RequestContext(UserInfo("admin", groups=("system:masters",)), dry_run=dry_run)


class World:
    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.reads: list[str] = []  # keys the registry read from the store

    def cached(self) -> bytes | None:
        cache = self.srv.api.caches.caches.get(CONFIGMAPS.storage_prefix())
        return cache.objects.raw.get(KEY) if cache is not None else None

    async def settled(self, rv: str) -> bytes:
        """The cache's bytes once it holds version `rv`."""
        def holds() -> bool:
            raw = self.cached()
            return raw is not None and orjson.loads(raw)["metadata"]["resourceVersion"] == rv
        await eventually(holds, what=f"the cache at {rv}")
        raw = self.cached()
        assert raw is not None
        return raw

    def lag(self, raw: bytes) -> None:
        self.srv.api.caches.caches[CONFIGMAPS.storage_prefix()].objects.raw[KEY] = raw

    async def patch(self, patch: Any, patch_type: str = MERGE_PATCH, dry_run: bool = False) -> Obj:
        obj, created = await self.srv.api.registry.patch(CONFIGMAPS, "default", "cm", patch_type, patch,
                                                         _ctx(dry_run))
        assert not created
        return obj

    async def stored(self) -> Obj:
        kv = await self.srv.store.get(KEY)
        obj: Obj = orjson.loads(kv.value)
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[World, bytes, str]]:
    """A configmap at version 1 (data a=1), then version 2 (b=2 added); the cache holds version 2.
    Yields the world, the cache's bytes of version 1 and version 2's resourceVersion."""
    async with api_server() as srv:
        w = World(srv)
        first = await srv.api.create_object(CONFIGMAPS, {"metadata": {"name": "cm", "namespace": "default"},
                                                         "data": {"a": "1"}})
        old = await w.settled(first["metadata"]["resourceVersion"])
        second = await w.patch({"data": {"b": "2"}})
        await w.settled(second["metadata"]["resourceVersion"])
        get = srv.store.get

        async def counted(key: str) -> KeyValue:
            w.reads.append(key)
            return await get(key)

        monkeypatch.setattr(srv.store, "get", counted)
        yield w, old, second["metadata"]["resourceVersion"]


async def test_a_current_copy_spares_the_store_read(world: tuple[World, bytes, str]) -> None:
    w, _, rv2 = world
    out = await w.patch({"data": {"c": "3"}})
    assert out["data"] == {"a": "1", "b": "2", "c": "3"}
    assert int(out["metadata"]["resourceVersion"]) > int(rv2)
    assert w.reads == []
    assert await w.stored() == out


async def test_a_lagging_copy_never_overwrites_the_newer_write(world: tuple[World, bytes, str]) -> None:
    w, old, _ = world
    w.lag(old)  # the cache still shows version 1: no b
    out = await w.patch({"data": {"c": "3"}})
    assert out["data"] == {"a": "1", "b": "2", "c": "3"}  # b, written after version 1, is kept
    assert w.reads == [KEY]  # the compare-and-swap failed on the copy; the store's version was patched
    assert await w.stored() == out


async def test_resource_version_preconditions_are_the_stores(world: tuple[World, bytes, str]) -> None:
    w, old, rv2 = world
    rv1 = orjson.loads(old)["metadata"]["resourceVersion"]
    w.lag(old)
    # The client saw version 2, the cache still has version 1: the store's version 2 is what counts.
    out = await w.patch({"metadata": {"resourceVersion": rv2}, "data": {"c": "3"}})
    assert out["data"] == {"a": "1", "b": "2", "c": "3"}
    # Version 1 matches the lagging copy, not the store: 409 as before, and nothing written.
    w.lag(old)
    with pytest.raises(StatusError) as e:
        await w.patch({"metadata": {"resourceVersion": rv1}, "data": {"d": "4"}})
    assert e.value.code == 409 and "has been modified" in e.value.message
    assert await w.stored() == out


async def test_a_patch_that_fails_on_the_copy_is_tried_on_the_store(world: tuple[World, bytes, str]) -> None:
    w, old, _ = world
    w.lag(old)
    # A JSON patch whose test only the store's version passes.
    out = await w.patch([{"op": "test", "path": "/data/b", "value": "2"},
                         {"op": "replace", "path": "/data/a", "value": "9"}], JSON_PATCH)
    assert out["data"] == {"a": "9", "b": "2"}
    w.lag(old)
    with pytest.raises(StatusError) as e:  # and one that fails on the store too fails as before
        await w.patch([{"op": "test", "path": "/data/b", "value": "x"}], JSON_PATCH)
    assert e.value.code == 422


async def test_no_change_to_a_lagging_copy_is_still_a_change(world: tuple[World, bytes, str]) -> None:
    w, old, rv2 = world
    revision = await w.srv.store.current_revision()
    assert (await w.patch({"data": {"b": "2"}}))["metadata"]["resourceVersion"] == rv2  # a real no-op
    assert await w.srv.store.current_revision() == revision  # not written
    w.lag(old)
    # Against version 1 (no b) removing b changes nothing; against the store it removes b.
    out = await w.patch({"data": {"b": None}})
    assert out["data"] == {"a": "1"}
    assert await w.stored() == out


async def test_deleted_in_the_store_but_still_cached_is_not_found(world: tuple[World, bytes, str]) -> None:
    w, old, _ = world
    await w.srv.api.registry.delete(CONFIGMAPS, "default", "cm", DeleteOptions(), _ctx())
    w.lag(old)
    with pytest.raises(StatusError) as e:
        await w.patch({"data": {"c": "3"}})
    assert e.value.code == 404


async def test_a_dry_run_reads_the_store(world: tuple[World, bytes, str]) -> None:
    w, old, rv2 = world
    w.lag(old)
    out = await w.patch({"data": {"c": "3"}}, dry_run=True)
    assert out["data"] == {"a": "1", "b": "2", "c": "3"}
    assert w.reads == [KEY]
    assert (await w.stored())["metadata"]["resourceVersion"] == rv2
