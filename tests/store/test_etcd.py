"""What only the etcd driver has: several endpoints, etcd's own compaction and revisions, the request
size etcd accepts, and watches that survive a restart of etcd. The protocol's semantics are in
test_conformance.py, which runs against etcd too."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pyk8s.store.errors import Compacted, InvalidValue, KeyNotFound
from pyk8s.store.etcd import EtcdStore, EtcdUnavailable
from pyk8s.store.factory import open_store
from pyk8s.store.protocol import MAX_VALUE_BYTES, Event, EventType, KeyValue, Store
from tests.support.etcd import EtcdCluster, EtcdProcess, etcd_available

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd is not installed"),
]

DEADLINE_S = 10.0


async def next_event(watch: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(watch), DEADLINE_S)


async def etcdctl(endpoint: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "etcdctl",
        f"--endpoints={endpoint}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def dead_endpoint() -> str:
    """A loopback port nothing listens on (bound and released just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def member(tmp_path: Path) -> Iterator[EtcdProcess]:
    """An etcd of this test's own, for tests that stop it or compact all of it."""
    m = EtcdProcess.start(tmp_path / "etcd")
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"/etcd-test/{request.node.name}/"


async def test_revisions_are_etcds(etcd_endpoint: str, prefix: str) -> None:
    store = await EtcdStore.open([etcd_endpoint])
    try:
        kv = await store.update(prefix + "a", b"2", (await store.create(prefix + "a", b"1")).mod_revision)
        got = json.loads(await etcdctl(etcd_endpoint, "get", prefix + "a", "-w", "json"))["kvs"][0]
        assert (got["mod_revision"], got["create_revision"]) == (kv.mod_revision, kv.create_revision)
        # And what etcdctl writes, the store reads at etcd's revision.
        put = json.loads(await etcdctl(etcd_endpoint, "put", prefix + "b", "x", "-w", "json"))
        assert await store.get(prefix + "b") == KeyValue(
            prefix + "b", b"x", put["header"]["revision"], put["header"]["revision"]
        )
    finally:
        await store.close()


async def test_open_through_the_factory_skips_a_dead_endpoint(etcd_endpoint: str, prefix: str) -> None:
    by_name = etcd_endpoint.replace("127.0.0.1", "localhost")
    for endpoints in (
        [dead_endpoint(), etcd_endpoint],
        [etcd_endpoint, dead_endpoint()],
        [dead_endpoint(), by_name],  # names are resolved to addresses for gRPC's address list
    ):
        store = await open_store("etcd://" + ",".join(endpoints))
        try:
            kv = await store.create(prefix + ",".join(endpoints), b"v")
            assert (await store.get(kv.key)).value == b"v"
        finally:
            await store.close()


async def test_implements_the_store_protocol(etcd_endpoint: str) -> None:
    store = await EtcdStore.open([etcd_endpoint])
    try:
        assert isinstance(store, Store)
    finally:
        await store.close()


@pytest.mark.parametrize("endpoints", [[], ["no-port"], ["https://127.0.0.1:2379"], ["host:port"]])
async def test_malformed_endpoints_are_refused(endpoints: list[str]) -> None:
    with pytest.raises(ValueError):
        await EtcdStore.open(endpoints)


async def test_open_fails_when_no_endpoint_answers() -> None:
    with pytest.raises(EtcdUnavailable):
        await EtcdStore.open([dead_endpoint(), dead_endpoint()], request_timeout=1.0)


async def test_fails_over_to_the_next_endpoint_when_the_one_in_use_stops(tmp_path: Path) -> None:
    first = EtcdProcess.start(tmp_path / "first")
    second = EtcdProcess.start(tmp_path / "second")
    try:
        store = await EtcdStore.open([first.endpoint, second.endpoint])
        try:
            # pick_first: the store talks to the first endpoint while it is up.
            await store.create("/failover/on-first", b"1")
            assert "on-first" in await etcdctl(first.endpoint, "get", "/failover/on-first")
            first.stop()
            # (Two separate one-member etcds stand in for two members of one cluster: the point is
            # that calls go on through the second endpoint without reopening the store.)
            kv = await store.create("/failover/on-second", b"2")
            assert "on-second" in await etcdctl(second.endpoint, "get", "/failover/on-second")
            assert await store.get("/failover/on-second") == kv
            with pytest.raises(KeyNotFound):
                await store.get("/failover/on-first")
        finally:
            await store.close()
    finally:
        first.stop()
        second.stop()


async def test_compaction_by_etcdctl_is_seen_by_the_store(member: EtcdProcess) -> None:
    store = await EtcdStore.open([member.endpoint])
    try:
        assert await store.compacted_revision() == 0
        first = await store.create("/c/a", b"0")
        for i in range(1, 6):
            await store.update("/c/a", str(i).encode(), first.mod_revision + i - 1)
        point = first.mod_revision + 3
        await etcdctl(member.endpoint, "compaction", str(point))
        assert await store.compacted_revision() == point
        with pytest.raises(Compacted) as listed:
            await store.list("/c/", revision=point - 1)
        assert listed.value.compact_revision == point
        assert [kv.value for kv in (await store.list("/c/", revision=point)).items] == [b"3"]
        with pytest.raises(Compacted):
            await next_event(store.watch("/c/", point - 2))
        # from_revision = point - 1 needs revision `point` onwards, which etcd still has.
        watch = store.watch("/c/", point - 1)
        try:
            assert (await next_event(watch)).kv.value == b"3"
        finally:
            await watch.aclose()
    finally:
        await store.close()


async def test_compaction_by_the_store_is_etcds(member: EtcdProcess) -> None:
    store = await EtcdStore.open([member.endpoint])
    try:
        first = await store.create("/c/a", b"0")
        second = await store.update("/c/a", b"1", first.mod_revision)
        await store.compact(second.mod_revision)
        proc = await asyncio.create_subprocess_exec(
            "etcdctl",
            f"--endpoints={member.endpoint}",
            "get",
            "/c/a",
            f"--rev={first.mod_revision}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
        assert proc.returncode != 0
        assert b"required revision has been compacted" in err
        # Compacting again, lower, or beyond the newest revision is harmless.
        await store.compact(first.mod_revision)
        await store.compact(second.mod_revision)
        await store.compact(second.mod_revision + 1000)
        assert await store.compacted_revision() == second.mod_revision
        assert await store.get("/c/a") == second
    finally:
        await store.close()


async def test_largest_value_travels_through_watch_with_its_previous_value(
    etcd_endpoint: str, prefix: str
) -> None:
    # A 3 MiB value and its 3 MiB predecessor arrive in one 6 MiB watch response.
    big_a, big_b = b"a" * MAX_VALUE_BYTES, b"b" * MAX_VALUE_BYTES
    store = await EtcdStore.open([etcd_endpoint])
    try:
        created = await store.create(prefix + "big", big_a)
        watch = store.watch(prefix, created.mod_revision)
        try:
            updated = await store.update(prefix + "big", big_b, created.mod_revision)
            event = await next_event(watch)
            assert event.type is EventType.UPDATE
            assert event.kv == updated
            assert event.prev_kv == created
        finally:
            await watch.aclose()
        assert (await store.get(prefix + "big")).value == big_b
    finally:
        await store.close()


async def test_a_value_etcd_finds_too_large_is_invalid_and_writes_nothing(tmp_path: Path) -> None:
    # etcd's default limit (1.5 MiB) is below the store's 3 MiB: the error names the setting to raise.
    member = EtcdProcess.start(tmp_path / "etcd", max_request_bytes=1536 * 1024)
    try:
        store = await EtcdStore.open([member.endpoint])
        try:
            before = await store.current_revision()
            # Refused by etcd, and (above its limit + 512 KiB) by its gRPC server.
            for size in (1800 * 1024, 2200 * 1024):
                with pytest.raises(InvalidValue, match="max-request-bytes"):
                    await store.create("/big", b"x" * size)
            assert await store.current_revision() == before
            with pytest.raises(KeyNotFound):
                await store.get("/big")
        finally:
            await store.close()
    finally:
        member.stop()


async def test_watch_resumes_without_gap_or_duplicate_when_etcd_restarts(member: EtcdProcess) -> None:
    store = await EtcdStore.open([member.endpoint])
    try:
        start = await store.current_revision()
        before = await store.create("/w/before", b"1")
        watch = store.watch("/w/", start)
        try:
            assert (await next_event(watch)).kv == before
            member.restart()
            # The store's next call waits for etcd to be back; the watch resumes after `before`.
            after = await store.create("/w/after", b"2")
            event = await next_event(watch)
            assert (event.type, event.kv) == (EventType.CREATE, after)
            later = await store.update("/w/before", b"3", before.mod_revision)
            assert (await next_event(watch)).kv == later
        finally:
            await watch.aclose()
    finally:
        await store.close()


async def test_a_cluster_member_going_down_is_invisible_to_calls_and_watches(tmp_path: Path) -> None:
    cluster = EtcdCluster.start(tmp_path / "cluster", size=3)
    try:
        # Put the leader first: the store talks to it (pick_first), and then it goes down.
        status = json.loads(await etcdctl(",".join(cluster.endpoints), "endpoint", "status", "-w", "json"))
        leader = next(
            s["Endpoint"] for s in status if s["Status"]["leader"] == s["Status"]["header"]["member_id"]
        )
        cluster.members.sort(key=lambda m: leader.removeprefix("http://") != m.endpoint)
        assert cluster.members[0].endpoint == leader.removeprefix("http://")
        store = await EtcdStore.open(cluster.endpoints)
        try:
            start = await store.current_revision()
            before = await store.create("/ha/before", b"1")
            watch = store.watch("/ha/", start)
            try:
                assert (await next_event(watch)).kv == before
                cluster.members[0].stop()
                # Calls wait for the reconnection and for the election, then go on.
                after = await store.create("/ha/after", b"2")
                assert await store.get("/ha/before") == before
                event = await next_event(watch)
                assert (event.type, event.kv) == (EventType.CREATE, after)
                updated = await store.update("/ha/after", b"3", after.mod_revision)
                assert (await next_event(watch)).kv == updated
            finally:
                await watch.aclose()
        finally:
            await store.close()
    finally:
        cluster.stop()
