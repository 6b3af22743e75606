"""The store protocol's semantics, run unchanged against every driver (memory, sqlite, etcd).

Revisions are compared by relation (a write's revision is the current revision right after it, each
write adds exactly one), never by absolute value: the etcd store is shared across tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pyk8s.store.errors import (
    Compacted,
    Conflict,
    InvalidKey,
    InvalidValue,
    KeyExists,
    KeyNotFound,
    WatchOverflow,
)
from pyk8s.store.protocol import MAX_KEY_BYTES, MAX_VALUE_BYTES, Event, EventType, KeyValue, Store
from tests.store.conftest import StoreFactory

DEADLINE_S = 10.0


async def next_event(watch: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(watch), DEADLINE_S)


async def take(watch: AsyncIterator[Event], count: int) -> list[Event]:
    return [await next_event(watch) for _ in range(count)]


def summary(events: list[Event]) -> list[tuple[EventType, str, bytes, int, bytes | None]]:
    return [
        (e.type, e.kv.key, e.kv.value, e.revision, None if e.prev_kv is None else e.prev_kv.value)
        for e in events
    ]


# -- create, get, update, delete ----------------------------------------------------------------------


async def test_get_absent_key_raises_not_found(store: Store, prefix: str) -> None:
    with pytest.raises(KeyNotFound) as info:
        await store.get(prefix + "missing")
    assert info.value.key == prefix + "missing"


async def test_create_returns_value_at_the_next_revision(store: Store, prefix: str) -> None:
    before = await store.current_revision()
    kv = await store.create(prefix + "a", b"one")
    assert kv == KeyValue(prefix + "a", b"one", before + 1, before + 1)
    assert await store.current_revision() == before + 1
    assert await store.get(prefix + "a") == kv


async def test_create_of_present_key_raises_key_exists_and_writes_nothing(store: Store, prefix: str) -> None:
    first = await store.create(prefix + "a", b"one")
    with pytest.raises(KeyExists) as info:
        await store.create(prefix + "a", b"two")
    assert info.value.key == prefix + "a"
    assert await store.current_revision() == first.mod_revision
    assert await store.get(prefix + "a") == first


async def test_every_write_adds_exactly_one_revision(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    updated = await store.update(prefix + "a", b"2", created.mod_revision)
    deleted = await store.delete(prefix + "a")
    assert [created.mod_revision + i for i in range(3)] == [
        created.mod_revision,
        updated.mod_revision,
        deleted.mod_revision,
    ]
    assert await store.current_revision() == deleted.mod_revision


async def test_update_is_compare_and_swap(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    updated = await store.update(prefix + "a", b"2", created.mod_revision)
    assert updated == KeyValue(prefix + "a", b"2", created.mod_revision + 1, created.create_revision)

    with pytest.raises(Conflict) as info:
        await store.update(prefix + "a", b"3", created.mod_revision)  # stale
    assert info.value.current == updated
    assert info.value.expected_revision == created.mod_revision
    assert await store.current_revision() == updated.mod_revision
    assert await store.get(prefix + "a") == updated


async def test_update_or_delete_of_absent_key_raises_not_found(store: Store, prefix: str) -> None:
    with pytest.raises(KeyNotFound):
        await store.update(prefix + "a", b"1", 1)
    with pytest.raises(KeyNotFound):
        await store.delete(prefix + "a")
    created = await store.create(prefix + "a", b"1")
    await store.delete(prefix + "a")
    with pytest.raises(KeyNotFound):
        await store.update(prefix + "a", b"2", created.mod_revision)
    with pytest.raises(KeyNotFound):
        await store.delete(prefix + "a")


async def test_delete_returns_the_deleted_value_at_the_delete_revision(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    updated = await store.update(prefix + "a", b"2", created.mod_revision)
    deleted = await store.delete(prefix + "a")
    assert deleted == KeyValue(prefix + "a", b"2", updated.mod_revision + 1, created.create_revision)
    with pytest.raises(KeyNotFound):
        await store.get(prefix + "a")


async def test_delete_with_expected_revision_is_compare_and_swap(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    updated = await store.update(prefix + "a", b"2", created.mod_revision)
    with pytest.raises(Conflict) as info:
        await store.delete(prefix + "a", created.mod_revision)
    assert info.value.current == updated
    assert await store.get(prefix + "a") == updated
    deleted = await store.delete(prefix + "a", updated.mod_revision)
    assert deleted.mod_revision == updated.mod_revision + 1


async def test_recreate_after_delete_starts_a_new_generation(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    await store.delete(prefix + "a")
    again = await store.create(prefix + "a", b"2")
    assert again.create_revision == again.mod_revision == await store.current_revision()


async def test_concurrent_creates_of_one_key_admit_exactly_one(store: Store, prefix: str) -> None:
    before = await store.current_revision()
    results = await asyncio.gather(
        *(store.create(prefix + "a", str(i).encode()) for i in range(8)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, KeyValue)]
    assert len(winners) == 1
    assert all(isinstance(r, KeyExists) for r in results if not isinstance(r, KeyValue))
    assert await store.current_revision() == before + 1


async def test_concurrent_updates_from_one_revision_admit_exactly_one(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"0")
    results = await asyncio.gather(
        *(store.update(prefix + "a", str(i).encode(), created.mod_revision) for i in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, KeyValue)]
    assert len(winners) == 1
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) == 7
    assert all(c.current == winners[0] for c in conflicts)


async def test_concurrent_creates_get_distinct_consecutive_revisions(store: Store, prefix: str) -> None:
    before = await store.current_revision()
    created = await asyncio.gather(*(store.create(f"{prefix}k{i:03}", b"v") for i in range(50)))
    assert sorted(kv.mod_revision for kv in created) == list(range(before + 1, before + 51))


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["relative/key", "", "/nul\x00byte", "/new\nline", "/" + "x" * MAX_KEY_BYTES],
    ids=["relative", "empty", "nul", "newline", "too-long"],
)
async def test_invalid_key_is_refused_and_consumes_no_revision(store: Store, prefix: str, key: str) -> None:
    existing = await store.create(prefix + "a", b"1")
    with pytest.raises(InvalidKey):
        await store.create(key, b"v")
    with pytest.raises(InvalidKey):
        await store.update(key, b"v", existing.mod_revision)
    with pytest.raises(InvalidKey):
        await store.delete(key)
    with pytest.raises(InvalidKey):
        await store.get(key)
    assert await store.current_revision() == existing.mod_revision


async def test_invalid_value_is_refused_and_leaves_nothing_behind(store: Store, prefix: str) -> None:
    existing = await store.create(prefix + "a", b"1")
    too_big = b"x" * (MAX_VALUE_BYTES + 1)
    with pytest.raises(InvalidValue):
        await store.create(prefix + "b", too_big)
    with pytest.raises(InvalidValue):
        await store.create(prefix + "c", "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        await store.update(prefix + "a", too_big, existing.mod_revision)
    assert await store.current_revision() == existing.mod_revision
    assert (await store.list(prefix)).items == [existing]


async def test_largest_value_round_trips(store: Store, prefix: str) -> None:
    value = bytes(range(256)) * (MAX_VALUE_BYTES // 256)
    kv = await store.create(prefix + "big", value)
    assert (await store.get(prefix + "big")).value == value
    assert kv.value == value


# -- list -------------------------------------------------------------------------------------------


async def test_list_is_sorted_and_isolated_by_prefix(store: Store, prefix: str) -> None:
    for key in ["a/2", "a/1", "ab", "a/3/x", "b"]:
        await store.create(prefix + key, key.encode())
    result = await store.list(prefix + "a/")
    assert [kv.key for kv in result.items] == [prefix + k for k in ["a/1", "a/2", "a/3/x"]]
    assert result.revision == await store.current_revision()
    assert result.more is False
    assert [kv.key for kv in (await store.list(prefix)).items] == [
        prefix + k for k in ["a/1", "a/2", "a/3/x", "ab", "b"]
    ]
    assert (await store.list(prefix + "zzz/")).items == []


async def test_list_pages_with_limit_and_continue(store: Store, prefix: str) -> None:
    keys = [f"{prefix}k{i:02}" for i in range(7)]
    for key in keys:
        await store.create(key, b"v")
    first = await store.list(prefix, limit=3)
    assert [kv.key for kv in first.items] == keys[:3] and first.more
    # Writes between pages do not show: later pages read the first page's snapshot.
    await store.create(prefix + "k03a", b"late")
    await store.delete(keys[5])
    second = await store.list(prefix, limit=3, continue_after=first.items[-1].key, revision=first.revision)
    assert [kv.key for kv in second.items] == keys[3:6] and second.more
    assert second.revision == first.revision
    third = await store.list(prefix, limit=3, continue_after=second.items[-1].key, revision=first.revision)
    assert [kv.key for kv in third.items] == keys[6:] and not third.more
    # Continuing after a key that sorts before the prefix starts at the prefix.
    assert [kv.key for kv in (await store.list(prefix, continue_after="/")).items] == [
        kv.key for kv in (await store.list(prefix)).items
    ]
    exact = await store.list(prefix, limit=7)
    assert len(exact.items) == 7 and not exact.more


async def test_list_at_an_old_revision_is_a_snapshot(store: Store, prefix: str) -> None:
    a1 = await store.create(prefix + "a", b"a1")
    b1 = await store.create(prefix + "b", b"b1")
    snapshot = b1.mod_revision
    await store.update(prefix + "a", b"a2", a1.mod_revision)
    await store.delete(prefix + "b")
    await store.create(prefix + "c", b"c1")
    old = await store.list(prefix, revision=snapshot)
    assert old.items == [a1, b1]
    assert old.revision == snapshot
    now = await store.list(prefix)
    assert [(kv.key, kv.value) for kv in now.items] == [(prefix + "a", b"a2"), (prefix + "c", b"c1")]


async def test_list_above_the_current_revision_is_clamped(store: Store, prefix: str) -> None:
    kv = await store.create(prefix + "a", b"1")
    result = await store.list(prefix, revision=kv.mod_revision + 1000)
    assert result.revision == await store.current_revision()
    assert result.items == [kv]


# -- compaction ---------------------------------------------------------------------------------------


async def test_compaction_drops_history_but_keeps_current_values(store: Store, prefix: str) -> None:
    a1 = await store.create(prefix + "a", b"a1")
    b1 = await store.create(prefix + "b", b"b1")
    a2 = await store.update(prefix + "a", b"a2", a1.mod_revision)
    gone = await store.create(prefix + "gone", b"g")
    await store.delete(prefix + "gone")
    c1 = await store.create(prefix + "c", b"c1")
    point = c1.mod_revision
    await store.update(prefix + "c", b"c2", c1.mod_revision)
    await store.compact(point)
    assert await store.compacted_revision() >= point

    with pytest.raises(Compacted):
        await store.list(prefix, revision=point - 1)
    at_point = await store.list(prefix, revision=point)
    assert at_point.items == [a2, b1, c1]
    assert await store.get(prefix + "b") == b1
    with pytest.raises(Compacted):
        await anext(store.watch(prefix, point - 2))
    # A watch whose first needed revision is the compaction point still works, with prev_kv.
    watch = store.watch(prefix, point - 1)
    try:
        events = await take(watch, 2)
    finally:
        await watch.aclose()
    assert summary(events) == [
        (EventType.CREATE, prefix + "c", b"c1", point, None),
        (EventType.UPDATE, prefix + "c", b"c2", point + 1, b"c1"),
    ]
    assert gone.mod_revision < point
    # Compacting at or below the compaction point does nothing.
    await store.compact(point - 3)
    assert await store.compacted_revision() >= point


# -- watch ------------------------------------------------------------------------------------------


async def test_watch_replays_history_with_prev_values(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    a1 = await store.create(prefix + "a", b"1")
    a2 = await store.update(prefix + "a", b"2", a1.mod_revision)
    deleted = await store.delete(prefix + "a")
    watch = store.watch(prefix, start)
    try:
        events = await take(watch, 3)
    finally:
        await watch.aclose()
    assert events[0] == Event(EventType.CREATE, a1, None)
    assert events[1].type is EventType.UPDATE and events[1].kv == a2 and events[1].prev_kv == a1
    assert events[2].type is EventType.DELETE and events[2].kv == deleted and events[2].prev_kv == a2


async def test_watch_resumes_exactly_after_a_revision(store: Store, prefix: str) -> None:
    written = [await store.create(f"{prefix}k{i}", b"v") for i in range(5)]
    watch = store.watch(prefix, written[1].mod_revision)
    try:
        events = await take(watch, 3)
        assert [e.revision for e in events] == [kv.mod_revision for kv in written[2:]]
        # Live events follow history with no gap or duplicate.
        live = [await store.create(f"{prefix}live{i}", b"v") for i in range(3)]
        events = await take(watch, 3)
        assert [e.kv for e in events] == live
    finally:
        await watch.aclose()


async def test_watch_delivers_live_writes_in_order(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    watch = store.watch(prefix, start)
    try:
        first = asyncio.ensure_future(next_event(watch))
        kv = await store.create(prefix + "a", b"1")
        assert (await first).kv == kv
        updated = await store.update(prefix + "a", b"2", kv.mod_revision)
        deleted = await store.delete(prefix + "a")
        events = await take(watch, 2)
        assert [(e.type, e.kv) for e in events] == [
            (EventType.UPDATE, updated),
            (EventType.DELETE, deleted),
        ]
    finally:
        await watch.aclose()


async def test_watch_is_isolated_by_prefix(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    await store.create(prefix + "ab", b"no")
    await store.create(prefix + "a", b"no")
    inside = await store.create(prefix + "a/x", b"yes")
    await store.create(prefix + "b/x", b"no")
    last = await store.create(prefix + "a/y", b"yes")
    watch = store.watch(prefix + "a/", start)
    try:
        events = await take(watch, 2)
    finally:
        await watch.aclose()
    assert [e.kv for e in events] == [inside, last]


async def test_watch_below_compaction_raises_compacted(store: Store, prefix: str) -> None:
    first = await store.create(prefix + "a", b"1")
    for i in range(3):
        await store.update(prefix + "a", str(i).encode(), first.mod_revision + i)
    await store.compact(first.mod_revision + 2)
    with pytest.raises(Compacted):
        await anext(store.watch(prefix, first.mod_revision))


async def test_slow_watcher_overflows_without_blocking_writers(
    store_factory: StoreFactory, prefix: str
) -> None:
    store = await store_factory(watch_buffer=2)
    start = await store.current_revision()
    first = await store.create(prefix + "k-000", b"v")
    watch = store.watch(prefix, start)
    received = [await next_event(watch)]  # the watch is live from here on
    written = [first]
    overflow: WatchOverflow | None = None
    deadline = asyncio.get_running_loop().time() + DEADLINE_S * 3
    # Write faster than we read (ten writes per read) until the watcher is cut off.
    while overflow is None:
        assert asyncio.get_running_loop().time() < deadline, "the watcher never overflowed"
        for _ in range(10):
            written.append(await store.create(f"{prefix}k-{len(written):03}", b"v"))
        try:
            received.append(await next_event(watch))
        except WatchOverflow as e:
            overflow = e
    # Everything up to last_revision was delivered, and nothing after it.
    expected = [kv for kv in written if kv.mod_revision <= overflow.last_revision]
    assert [e.kv for e in received] == expected[: len(received)]
    assert len(received) == len(expected)
    assert overflow.last_revision < written[-1].mod_revision
    # Resuming from last_revision (again after each overflow) delivers exactly the rest.
    got: list[Event] = []
    resume_from = overflow.last_revision
    while len(got) < len(written) - len(received):
        resumed = store.watch(prefix, resume_from)
        try:
            while len(got) < len(written) - len(received):
                got.append(await next_event(resumed))
        except WatchOverflow as e:
            assert e.last_revision >= (got[-1].revision if got else resume_from)
            resume_from = e.last_revision
        finally:
            await resumed.aclose()
    assert [e.kv for e in got] == [kv for kv in written if kv.mod_revision > overflow.last_revision]


async def test_closing_a_watch_ends_it(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    await store.create(prefix + "a", b"1")
    watch = store.watch(prefix, start)
    await next_event(watch)
    await watch.aclose()
    # Writes after a watch closed still succeed, and a new watch sees them.
    kv = await store.create(prefix + "b", b"1")
    again = store.watch(prefix, kv.mod_revision - 1)
    try:
        assert (await next_event(again)).kv == kv
    finally:
        await again.aclose()


async def test_close_ends_pending_watches(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    kv = await store.create(prefix + "a", b"1")
    watch = store.watch(prefix, start)
    assert (await next_event(watch)).kv == kv
    pending = asyncio.ensure_future(anext(watch))
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, DEADLINE_S)
