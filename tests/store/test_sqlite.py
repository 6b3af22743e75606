"""What only the sqlite driver promises: crash safety, several processes on one file, and background
compaction keeping a window of history. Other processes run tests/store/sqlite_worker.py."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from pyk8s.store import sqlite as sqlite_driver
from pyk8s.store.errors import Compacted
from pyk8s.store.protocol import Event, EventType
from pyk8s.store.sqlite import SqliteStore

DEADLINE_S = 30.0


class Worker:
    """A sqlite_worker process whose output lines are read with a deadline."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, root: Path, *args: str) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.store.sqlite_worker",
            *args,
            cwd=root,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), DEADLINE_S)
        assert raw, f"the worker ended early with {await self.proc.wait()}"
        return raw.decode().rstrip("\n")

    async def lines(self, count: int) -> list[str]:
        return [await self.line() for _ in range(count)]

    async def finish(self) -> None:
        assert await asyncio.wait_for(self.proc.wait(), DEADLINE_S) == 0

    async def kill(self) -> int:
        """SIGKILL it and return its exit status. Its unread output is drained first: on Python 3.11 a
        process's wait() returns only once its pipes reached EOF, and a full pipe whose reader paused never
        does."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        assert self.proc.stdout is not None
        await asyncio.wait_for(self.proc.stdout.read(), DEADLINE_S)
        return await asyncio.wait_for(self.proc.wait(), DEADLINE_S)


@pytest.fixture
def root(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.rootpath)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


def integrity(path: str) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def history(store: SqliteStore, prefix: str, after: int) -> list[Event]:
    """Every event under `prefix` after `after`, up to the current revision."""
    newest = await store.current_revision()
    events: list[Event] = []
    if newest <= after:
        return events
    watch = store.watch(prefix, after)
    try:
        while not events or events[-1].revision < newest:
            events.append(await asyncio.wait_for(anext(watch), DEADLINE_S))
    finally:
        await watch.aclose()
    return events


async def test_sigkill_mid_write_storm_loses_no_acknowledged_write(root: Path, db: str) -> None:
    worker = await Worker.start(root, "storm", db)
    acks: list[tuple[int, str, str]] = []
    seen: list[int] = []
    try:
        while len(acks) < 3000 or not seen:
            kind, rev, *rest = (await worker.line()).split()
            if kind == "ack":
                acks.append((int(rev), rest[0], rest[1]))
            else:
                seen.append(int(rev))
    finally:
        status = await worker.kill()  # in the middle of the storm: 16 writers are still going
    assert status == -signal.SIGKILL

    assert integrity(db) == "ok"
    store = await SqliteStore.open(db)
    try:
        newest = await store.current_revision()
        events = await history(store, "/storm/", 0)
        # One revision per write, no gap, no duplicate.
        assert [e.revision for e in events] == list(range(1, newest + 1))
        by_revision = {e.revision: e for e in events}
        for rev, key, value in acks:
            event = by_revision[rev]
            assert (event.kv.key, event.kv.value) == (key, value.encode())
            created = int(value.split("-")[1]) % 4 == 0  # the worker creates, then updates three times
            assert event.type is (EventType.CREATE if created else EventType.UPDATE)
        assert max(rev for rev, _, _ in acks) <= newest

        # The watcher saw a gapless prefix of history; a watch from its last revision replays the rest.
        assert seen == list(range(1, seen[-1] + 1))
        missed = await history(store, "/storm/", seen[-1])
        assert missed == [e for e in events if e.revision > seen[-1]]

        # Revisions keep increasing after the crash.
        kv = await store.create("/after/crash", b"v")
        assert kv.mod_revision == newest + 1
    finally:
        await store.close()


async def test_two_processes_write_one_file(root: Path, db: str) -> None:
    store = await SqliteStore.open(db)
    try:
        start = await store.current_revision()
        watch = store.watch("/", start)
        child = await Worker.start(root, "write", db, "/child/", "300")
        keys = iter(range(300))

        async def writer() -> None:
            for i in keys:
                await store.create(f"/parent/{i:05}", b"v")

        await asyncio.gather(*(writer() for _ in range(8)))
        child_acks = [line.split() for line in await child.lines(300)]
        await child.finish()

        # This process's watcher sees the other process's writes too (found by polling), in order.
        events = [await asyncio.wait_for(anext(watch), DEADLINE_S) for _ in range(600)]
        await watch.aclose()
        assert [e.revision for e in events] == list(range(start + 1, start + 601))
        assert {e.kv.key for e in events} == {f"/parent/{i:05}" for i in range(300)} | {
            f"/child/{i:05}" for i in range(300)
        }
        by_revision = {e.revision: e.kv.key for e in events}
        assert all(by_revision[int(rev)] == key for _, rev, key in child_acks)
        assert len((await store.list("/")).items) == 600
        assert await store.current_revision() == start + 600
    finally:
        await store.close()
    assert integrity(db) == "ok"


async def test_writes_wait_for_a_lock_held_elsewhere_in_order_without_blocking_the_loop(db: str) -> None:
    store = await SqliteStore.open(db)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock
        first = asyncio.create_task(store.create("/held/1", b"v"))
        second = asyncio.create_task(store.create("/held/2", b"v"))
        # The loop keeps serving (this coroutine runs, reads answer) while both writes wait.
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.2
        while loop.time() < until:
            assert await store.current_revision() >= 0
            await asyncio.sleep(0.01)
        assert not first.done() and not second.done()
        other.execute("COMMIT")
        kv1, kv2 = await asyncio.wait_for(asyncio.gather(first, second), DEADLINE_S)
        assert kv2.mod_revision == kv1.mod_revision + 1
        assert store._on_thread == 0  # the writer thread has caught up; later writes follow in order
        kv3 = await store.create("/held/3", b"v")
        assert kv3.mod_revision == kv2.mod_revision + 1
        assert [e.kv.key for e in await history(store, "/held/", 0)] == ["/held/1", "/held/2", "/held/3"]
    finally:
        other.close()
        await store.close()
    assert integrity(db) == "ok"


async def test_no_write_runs_a_checkpoint_itself(db: str) -> None:
    # Checkpoints fsync the database: only the background checkpointer may run them, never a commit on the
    # loop or on the writer thread.
    store = await SqliteStore.open(db)
    try:
        for conn in (store._loop_writer, store._writer_conn):
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        await store.close()


async def test_a_watcher_in_another_process_sees_writes(root: Path, db: str) -> None:
    store = await SqliteStore.open(db)
    try:
        await store.create("/other/before", b"v")  # the file exists before the child opens it
        start = await store.current_revision()
        child = await Worker.start(root, "watch", db, "/w/", str(start), "20")
        assert await child.line() == "ready"
        written = []
        for i in range(10):
            written.append(await store.create(f"/w/{i:02}", b"v"))
            await store.create(f"/other/{i:02}", b"v")
        for i in range(10):
            written.append(await store.update(f"/w/{i:02}", b"v2", written[i].mod_revision))
        lines = await child.lines(20)
        await child.finish()
        types = ["CREATE"] * 10 + ["UPDATE"] * 10
        expected = [f"event {kv.mod_revision} {t} {kv.key}" for t, kv in zip(types, written, strict=True)]
        assert lines == expected
    finally:
        await store.close()


async def test_background_compaction_keeps_a_window_of_history(db: str) -> None:
    store = await SqliteStore.open(db, retention_seconds=0, retention_revisions=5, compact_interval=0.02)
    try:
        kv = await store.create("/a", b"0")
        for i in range(30):
            kv = await store.update("/a", str(i).encode(), kv.mod_revision)
        await store.create("/b", b"kept")
        newest = await store.current_revision()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while await store.compacted_revision() < newest - 5:
            assert loop.time() < deadline, "background compaction did not run"
            await asyncio.sleep(0.02)  # poll interval; the deadline bounds the wait
        point = await store.compacted_revision()
        assert point == newest - 5  # nothing has been written since

        with pytest.raises(Compacted):
            await anext(store.watch("/", 1))
        with pytest.raises(Compacted):
            await store.list("/", revision=point - 1)
        window = await history(store, "/", point - 1)
        assert [e.revision for e in window] == list(range(point, newest + 1))
        assert window[0].prev_kv is not None and window[0].prev_kv.mod_revision == point - 1
        assert [x.value for x in (await store.list("/")).items] == [b"29", b"kept"]
        # The superseded rows are gone from the file.
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]
        finally:
            conn.close()
        assert rows <= 5 + 2
    finally:
        await store.close()


async def test_reopen_keeps_data_and_revisions(db: str) -> None:
    store = await SqliteStore.open(db)
    kv = await store.create("/a", b"1")
    deleted = await store.delete("/a")
    await store.compact(deleted.mod_revision)
    await store.close()
    store = await SqliteStore.open(db)
    try:
        assert await store.current_revision() == deleted.mod_revision
        again = await store.create("/a", b"2")
        assert again.mod_revision == deleted.mod_revision + 1 > kv.mod_revision
        assert await store.compacted_revision() == deleted.mod_revision
    finally:
        await store.close()


async def test_rows_compacted_by_another_writer_before_polling_end_watchers_with_compacted(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two stores on one file stand for two processes; `watching` learns of `other`'s rows only by
    # polling, which this test triggers by hand (the timer is set far away).
    monkeypatch.setattr(sqlite_driver, "POLL_INTERVAL", 3600.0)
    watching = await SqliteStore.open(db)
    other = await SqliteStore.open(db)
    try:
        start = await watching.current_revision()
        watch = watching.watch("/", start)
        own = await watching.create("/own", b"v")
        assert (await asyncio.wait_for(anext(watch), DEADLINE_S)).kv == own

        # Rows another writer added are published in order once polled...
        first = [await other.create(f"/other/{i}", b"v") for i in range(3)]
        watching._poll_wakeup.set()
        assert [(await asyncio.wait_for(anext(watch), DEADLINE_S)).kv for _ in first] == first

        # ...but rows it compacted away before the poll cannot be: the watcher ends with Compacted.
        kv = await other.create("/other/x", b"v")
        for i in range(3):
            kv = await other.update("/other/x", str(i).encode(), kv.mod_revision)
        await other.compact(kv.mod_revision)
        watching._poll_wakeup.set()
        with pytest.raises(Compacted):
            await asyncio.wait_for(anext(watch), DEADLINE_S)
        # A new watch from the compaction point works.
        again = watching.watch("/", kv.mod_revision - 1)
        try:
            assert (await asyncio.wait_for(anext(again), DEADLINE_S)).kv == kv
        finally:
            await again.aclose()
    finally:
        await other.close()
        await watching.close()
