"""The SQLite driver, the default: a log-structured table in the manner of kine.

Every write appends one row to `log`; the row id is the revision. A key's current value is its newest
row (a delete appends a tombstone row carrying the deleted value), so a list at an old revision reads
each key's newest row at or below it, and a watch replays rows in id order.

Concurrency:
- writes are committed on the event loop itself: the writes queued during one turn of the loop are
  committed in one transaction (group commit) at the next turn. A commit is short (WAL appends, no fsync
  with synchronous=NORMAL), and on the loop it needs no GIL hand-off: a writer thread re-takes the GIL
  after every SQLite call, and with the loop busy each re-take waited up to the 5 ms switch interval,
  so a group of a few writes took 15-80 ms under load (the API server's create tail);
- the loop never waits for SQLite's lock: when another process holds it (or for a compaction step,
  which can scan thousands of rows), the group goes to a writer thread that waits with a busy timeout,
  and later groups follow it there until it has caught up, so commits keep their order;
- reads run on a small pool of read connections in threads (WAL lets them read a consistent snapshot
  while the writer commits); tiny reads (current revision, one key) run on the loop's own connection;
- one poller per store publishes new rows to every watcher through a WatchHub: this process's writes are
  published at once, rows written by another process on the same file are found by polling the newest
  revision every POLL_INTERVAL seconds.

Durability: WAL with synchronous=NORMAL: a crashed process keeps every acknowledged write; a power loss
may lose the last instants. A second process may write the same file: each writer takes SQLite's write
lock (BEGIN IMMEDIATE) and numbers its rows from the sequence inside that transaction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pyk8s.store.errors import (
    Compacted,
    Conflict,
    KeyExists,
    KeyNotFound,
    StoreClosed,
    StoreError,
)
from pyk8s.store.fanout import WatchHub, watch_events
from pyk8s.store.protocol import (
    Event,
    EventType,
    KeyValue,
    ListResult,
    validate_key,
    validate_prefix,
    validate_value,
)
from pyk8s.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DEFAULT_WATCH_BUFFER = 4096
POLL_INTERVAL = 0.1  # seconds between checks for rows written by another process
BUSY_TIMEOUT = 60.0  # seconds a (thread's) connection waits for another process's lock
READERS = 2  # read connections (and threads)
MAX_GROUP = 1024  # writes committed in one transaction at most
CHECKPOINT_INTERVAL = 0.5  # seconds between background WAL checkpoints
REPLAY_CHUNK = 1000  # rows read per snapshot when replaying history
COMPACT_CHUNK = 2000  # rows examined per compaction step, so writes interleave

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev INTEGER NOT NULL,  -- the key's previous row; 0 for a create
    value BLOB NOT NULL         -- for a delete, the value deleted
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# AUTOINCREMENT keeps the highest revision ever used in sqlite_sequence, even after compaction deletes
# that row: the revision never goes back.
_SEQUENCE = "SELECT seq FROM sqlite_sequence WHERE name = 'log'"
_COMPACT_REV = "SELECT value FROM meta WHERE name = 'compact_rev'"
_LATEST = "SELECT rev, deleted, create_rev, value FROM log WHERE key = ? ORDER BY rev DESC LIMIT 1"
_LATEST_STATE = "SELECT rev, deleted FROM log WHERE key = ? ORDER BY rev DESC LIMIT 1"
_INSERT = "INSERT INTO log (rev, key, deleted, create_rev, prev_rev, value) VALUES (?, ?, ?, ?, ?, ?)"
# The newest row of each key at or below a revision, skipping tombstones; scans the (key, rev) index in
# key order so LIMIT stops early.
_LIST = """
SELECT l.key, l.rev, l.create_rev, l.value FROM log l
WHERE l.key {op} ? AND l.key < ? AND l.rev <= ? AND l.deleted = 0
  AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= ?)
ORDER BY l.key LIMIT ?
"""
_LIST_FROM = _LIST.format(op=">=")
_LIST_AFTER = _LIST.format(op=">")
# Rows in revision order; `+l.key` keeps the planner on the revision range instead of the key index.
_EVENTS = """
SELECT l.rev, l.key, l.deleted, l.create_rev, l.prev_rev, l.value, p.value FROM log l
LEFT JOIN log p ON p.rev = l.prev_rev AND l.deleted = 0
WHERE l.rev > ? AND l.rev <= ? AND +l.key >= ? AND +l.key < ?
ORDER BY l.rev LIMIT ?
"""
# Compaction at C keeps every row at or above C and each key's newest row below C unless it is a
# tombstone: that row is the value at C - 1, the prev_kv of the key's first retained event.
_COMPACT_DELETE = """
DELETE FROM log WHERE rev >= ? AND rev < ?
  AND (deleted = 1 OR EXISTS (SELECT 1 FROM log n WHERE n.key = log.key AND n.rev > log.rev AND n.rev < ?))
"""

# No printable character sorts at or above U+10FFFF, so prefix + this bounds every key under prefix.
_KEY_END = "\U0010ffff"

T = TypeVar("T")


def _connect(path: str, *, reader: bool, timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous = NORMAL")
    if reader:
        conn.execute("PRAGMA query_only = ON")
    else:
        # Checkpoints (which fsync the database) run in the background on a connection of their own:
        # run by a writer at commit they stalled every write behind them (store p99 23 ms), and on the
        # loop's writer they would stall the loop.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def _open_writer(path: str) -> sqlite3.Connection:
    conn = _connect(path, reader=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
    except BaseException:
        conn.close()
        raise
    return conn


def _scalar(conn: sqlite3.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _event(row: tuple[Any, ...]) -> Event:
    rev, key, deleted, create_rev, prev_rev, value, prev_value = row
    if deleted:
        kv = KeyValue(key, value, rev, create_rev)
        return Event(EventType.DELETE, kv, KeyValue(key, value, prev_rev, create_rev))
    kv = KeyValue(key, value, rev, create_rev)
    if prev_rev == 0:
        return Event(EventType.CREATE, kv, None)
    prev = None if prev_value is None else KeyValue(key, prev_value, prev_rev, create_rev)
    return Event(EventType.UPDATE, kv, prev)


class _Write:
    """A queued write; `apply` runs inside the group's transaction (on the loop or the writer thread)."""

    __slots__ = ("future",)
    on_thread = False  # always committed by the writer thread (long-running)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def apply(self, conn: sqlite3.Connection, rev: int) -> tuple[Any, Event | None]:
        raise NotImplementedError


class _Create(_Write):
    __slots__ = ("key", "value")

    def __init__(self, future: asyncio.Future[Any], key: str, value: bytes) -> None:
        super().__init__(future)
        self.key, self.value = key, value

    def apply(self, conn: sqlite3.Connection, rev: int) -> tuple[Any, Event | None]:
        row = conn.execute(_LATEST_STATE, (self.key,)).fetchone()
        if row is not None and not row[1]:
            raise KeyExists(self.key)
        conn.execute(_INSERT, (rev, self.key, 0, rev, 0, self.value))
        kv = KeyValue(self.key, self.value, rev, rev)
        return kv, Event(EventType.CREATE, kv, None)


class _Update(_Write):
    __slots__ = ("expected", "key", "value")

    def __init__(self, future: asyncio.Future[Any], key: str, value: bytes, expected: int) -> None:
        super().__init__(future)
        self.key, self.value, self.expected = key, value, expected

    def apply(self, conn: sqlite3.Connection, rev: int) -> tuple[Any, Event | None]:
        row = conn.execute(_LATEST, (self.key,)).fetchone()
        if row is None or row[1]:
            raise KeyNotFound(self.key)
        prev = KeyValue(self.key, row[3], row[0], row[2])
        if prev.mod_revision != self.expected:
            raise Conflict(self.key, self.expected, prev)
        conn.execute(_INSERT, (rev, self.key, 0, prev.create_revision, prev.mod_revision, self.value))
        kv = KeyValue(self.key, self.value, rev, prev.create_revision)
        return kv, Event(EventType.UPDATE, kv, prev)


class _Delete(_Write):
    __slots__ = ("expected", "key")

    def __init__(self, future: asyncio.Future[Any], key: str, expected: int | None) -> None:
        super().__init__(future)
        self.key, self.expected = key, expected

    def apply(self, conn: sqlite3.Connection, rev: int) -> tuple[Any, Event | None]:
        row = conn.execute(_LATEST, (self.key,)).fetchone()
        if row is None or row[1]:
            raise KeyNotFound(self.key)
        prev = KeyValue(self.key, row[3], row[0], row[2])
        if self.expected is not None and prev.mod_revision != self.expected:
            raise Conflict(self.key, self.expected, prev)
        conn.execute(_INSERT, (rev, self.key, 1, prev.create_revision, prev.mod_revision, prev.value))
        kv = KeyValue(self.key, prev.value, rev, prev.create_revision)
        return kv, Event(EventType.DELETE, kv, prev)


class _CompactStart(_Write):
    """Raises the compaction point to min(revision, current); returns (target, oldest row) or None."""

    __slots__ = ("revision",)

    def __init__(self, future: asyncio.Future[Any], revision: int) -> None:
        super().__init__(future)
        self.revision = revision

    def apply(self, conn: sqlite3.Connection, rev: int) -> tuple[Any, Event | None]:
        target = min(self.revision, rev - 1)
        if target <= _scalar(conn, _COMPACT_REV):
            return None, None
        conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('compact_rev', ?)", (target,))
        return (target, _scalar(conn, "SELECT MIN(rev) FROM log")), None


class _CompactStep(_Write):
    """Deletes superseded rows among the next COMPACT_CHUNK rows from `start`; returns where it stopped."""

    __slots__ = ("start", "target")
    on_thread = True

    def __init__(self, future: asyncio.Future[Any], start: int, target: int) -> None:
        super().__init__(future)
        self.start, self.target = start, target

    def apply(self, conn: sqlite3.Connection, rev: int) -> tuple[Any, Event | None]:
        row = conn.execute(
            "SELECT rev FROM log WHERE rev >= ? AND rev < ? ORDER BY rev LIMIT 1 OFFSET ?",
            (self.start, self.target, COMPACT_CHUNK),
        ).fetchone()
        stop = row[0] if row else self.target
        conn.execute(_COMPACT_DELETE, (self.start, stop, self.target))
        return stop, None


_STOP = None


class _Busy(Exception):
    """The loop's connection could not take SQLite's write lock at once."""


def _commit_group(conn: sqlite3.Connection, group: list[_Write]) -> tuple[list[Any], list[Event]]:
    """Apply `group` in one transaction: (outcome per write, events). Raises _Busy if the write lock is
    taken (nothing was written); any other SQLite error fails every write of the group."""
    outcomes: list[Any] = []
    events: list[Event] = []
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise _Busy from e
            raise
        try:
            rev = _scalar(conn, _SEQUENCE) + 1
            for write in group:
                try:
                    result, event = write.apply(conn, rev)
                except StoreError as e:
                    outcomes.append(e)
                    continue
                outcomes.append(result)
                if event is not None:
                    events.append(event)
                    rev += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as e:
        # Nothing of the group was committed: every write in it fails.
        log.warning("sqlite store: a group of %d writes failed: %s", len(group), e)
        error = StoreError(f"sqlite: {e}")
        return [error] * len(group), []
    return outcomes, events


class SqliteStore:
    """The store protocol on one SQLite file. Open with `await SqliteStore.open(path)`."""

    def __init__(
        self,
        path: str,
        writer: sqlite3.Connection,
        loop_writer: sqlite3.Connection,
        checkpointer: sqlite3.Connection,
        readers: list[sqlite3.Connection],
        local: sqlite3.Connection,
        *,
        retention_seconds: float,
        retention_revisions: int,
        compact_interval: float,
        watch_buffer: int,
    ) -> None:
        self.path = path
        self._loop = asyncio.get_running_loop()
        self._writer_conn = writer  # the writer thread's, waits for the lock
        self._loop_writer = loop_writer  # the loop's, never waits for the lock
        self._pending: list[_Write] = []  # writes of this loop turn, committed at the next
        self._on_thread = 0  # groups handed to the writer thread and not yet answered
        self._local = local  # the loop thread's connection, for tiny reads
        self._all_readers = readers
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        for conn in readers:
            self._readers.put(conn)
        self._executor = ThreadPoolExecutor(max_workers=len(readers), thread_name_prefix="pyk8s-sqlite-read")
        self._queue: queue.SimpleQueue[list[_Write] | None] = queue.SimpleQueue()
        self._hub = WatchHub(watch_buffer, _scalar(local, _SEQUENCE))
        self._retention_seconds = retention_seconds
        self._retention_revisions = retention_revisions
        self._compact_interval = compact_interval
        self._compact_lock = asyncio.Lock()
        self._poll_wakeup = asyncio.Event()
        self._polling = False  # the poller is reading rows; own writes must go through it to keep order
        self._published_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="pyk8s-sqlite-writer", daemon=True)
        self._writer.start()
        self._checkpointer = checkpointer  # background WAL checkpoints
        self._tasks = [
            self._loop.create_task(self._poll_loop(), name="pyk8s-sqlite-poller"),
            self._loop.create_task(self._compact_loop(), name="pyk8s-sqlite-compactor"),
            self._loop.create_task(self._checkpoint_loop(), name="pyk8s-sqlite-checkpointer"),
        ]

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        retention_seconds: float = 300,
        retention_revisions: int = 10_000,
        compact_interval: float = 60,
        watch_buffer: int = DEFAULT_WATCH_BUFFER,
    ) -> SqliteStore:
        """Open (creating if needed) the store in the SQLite file `path` and start its background work.

        Background compaction runs every `compact_interval` seconds and drops history that is both
        older than `retention_seconds` and more than `retention_revisions` revisions old."""
        if watch_buffer < 1 or compact_interval <= 0 or retention_revisions < 0 or retention_seconds < 0:
            raise ValueError("watch_buffer and compact_interval must be positive, retention not negative")
        writer = await asyncio.to_thread(_open_writer, path)
        conns: list[sqlite3.Connection] = []
        try:
            conns.append(await asyncio.to_thread(_connect, path, reader=False, timeout=0))
            conns.append(await asyncio.to_thread(_connect, path, reader=False))
            while len(conns) < READERS + 3:
                conns.append(await asyncio.to_thread(_connect, path, reader=True))
        except BaseException:
            writer.close()
            for conn in conns:
                conn.close()
            raise
        loop_writer, checkpointer, readers = conns[0], conns[1], conns[2:]
        return cls(
            path,
            writer,
            loop_writer,
            checkpointer,
            readers[1:],
            readers[0],
            retention_seconds=retention_seconds,
            retention_revisions=retention_revisions,
            compact_interval=compact_interval,
            watch_buffer=watch_buffer,
        )

    # -- the writer thread --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            group = self._queue.get()
            if group is _STOP:
                break
            try:
                outcomes, events = _commit_group(self._writer_conn, group)
            except _Busy:  # past BUSY_TIMEOUT: the other process kept the lock
                log.warning("sqlite store: a group of %d writes failed: the file stayed locked", len(group))
                error = StoreError("sqlite: database is locked")
                outcomes, events = [error] * len(group), []
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                self._loop.call_soon_threadsafe(self._thread_done, group, outcomes, events)
        self._writer_conn.close()

    def _thread_done(self, group: list[_Write], outcomes: list[Any], events: list[Event]) -> None:
        self._on_thread -= 1
        self._deliver(group, outcomes, events)

    def _to_thread(self, group: list[_Write]) -> None:
        self._on_thread += 1
        self._queue.put(group)

    def _flush(self) -> None:
        """On the loop: commit the writes queued since the last turn."""
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), MAX_GROUP):
            group = pending[start : start + MAX_GROUP]
            if self._on_thread:  # keep the order of commits behind what the thread still holds
                self._to_thread(group)
                continue
            try:
                outcomes, events = _commit_group(self._loop_writer, group)
            except _Busy:
                self._to_thread(group)
                continue
            self._deliver(group, outcomes, events)

    def _deliver(self, group: list[_Write], outcomes: list[Any], events: list[Event]) -> None:
        """On the loop: publish the group's events (if they follow what watchers saw), then answer."""
        if events:
            if not self._polling and events[0].revision == self._hub.revision + 1:
                self._publish(events)
            else:
                self._poll_wakeup.set()
        for write, outcome in zip(group, outcomes, strict=True):
            if write.future.done():  # the caller gave up; the write stands
                continue
            if isinstance(outcome, BaseException):
                write.future.set_exception(outcome)
            else:
                write.future.set_result(outcome)

    async def _submit(self, write: _Write) -> Any:
        self._check_open()
        if write.on_thread:
            if self._pending:
                self._flush()
            self._to_thread([write])
        else:
            if not self._pending:
                self._loop.call_soon(self._flush)
            self._pending.append(write)
        return await write.future

    # -- the poller ---------------------------------------------------------------------------------

    def _publish(self, events: list[Event]) -> None:
        self._hub.publish(events)
        if self._published_waiters:
            waiting = []
            for rev, fut in self._published_waiters:
                if rev <= self._hub.revision:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    waiting.append((rev, fut))
            self._published_waiters = waiting

    async def _wait_published(self, revision: int) -> None:
        if self._hub.revision >= revision:
            return
        fut = self._loop.create_future()
        self._published_waiters.append((revision, fut))
        self._poll_wakeup.set()
        await fut

    async def _poll_loop(self) -> None:
        while True:
            timer = self._loop.call_later(POLL_INTERVAL, self._poll_wakeup.set)
            try:
                await self._poll_wakeup.wait()
            finally:
                timer.cancel()
            self._poll_wakeup.clear()
            try:
                newest = _scalar(self._local, _SEQUENCE)
                if newest > self._hub.revision:
                    self._polling = True
                    try:
                        await self._catch_up(newest)
                    finally:
                        self._polling = False
            except sqlite3.Error as e:
                log.warning("sqlite store: polling for new rows failed: %s", e)

    async def _catch_up(self, newest: int) -> None:
        while self._hub.revision < newest:
            after = self._hub.revision
            compacted, rows = await self._read(self._read_events, "", after, newest, REPLAY_CHUNK)
            if after + 1 < compacted:
                # Another process compacted rows we had not published: watchers cannot be served
                # without a gap, so they end with Compacted and relist.
                self._hub.end_all(Compacted(after + 1, compacted))
                self._hub.advance(compacted - 1)
                continue
            events = [_event(row) for row in rows]
            if events:
                self._publish(events)
            if len(rows) < REPLAY_CHUNK:
                self._hub.advance(newest)
                self._publish([])

    # -- reads --------------------------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        return await self._loop.run_in_executor(self._executor, self._with_reader, fn, args)

    def _with_reader(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._readers.get()
        try:
            return fn(conn, *args)
        finally:
            self._readers.put(conn)

    @staticmethod
    def _read_events(
        conn: sqlite3.Connection, prefix: str, after: int, upto: int, limit: int
    ) -> tuple[int, list[tuple[Any, ...]]]:
        conn.execute("BEGIN")
        try:
            compacted = _scalar(conn, _COMPACT_REV)
            if after + 1 < compacted:
                return compacted, []
            rows = conn.execute(_EVENTS, (after, upto, prefix, prefix + _KEY_END, limit)).fetchall()
            return compacted, rows
        finally:
            conn.execute("COMMIT")

    @staticmethod
    def _read_latest(conn: sqlite3.Connection, key: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = conn.execute(_LATEST, (key,)).fetchone()
        return row

    @staticmethod
    def _read_list(
        conn: sqlite3.Connection, prefix: str, after: str | None, limit: int, revision: int
    ) -> tuple[int, list[tuple[Any, ...]]]:
        conn.execute("BEGIN")
        try:
            newest = _scalar(conn, _SEQUENCE)
            at = newest if revision == 0 else min(revision, newest)
            compacted = _scalar(conn, _COMPACT_REV)
            if at < compacted:
                raise Compacted(at, compacted)
            sql, start = (_LIST_FROM, prefix) if after is None or after < prefix else (_LIST_AFTER, after)
            args = (start, prefix + _KEY_END, at, at, limit + 1 if limit else -1)
            rows = conn.execute(sql, args).fetchall()
            return at, rows
        finally:
            conn.execute("COMMIT")

    async def current_revision(self) -> int:
        self._check_open()
        return _scalar(self._local, _SEQUENCE)

    async def compacted_revision(self) -> int:
        self._check_open()
        return _scalar(self._local, _COMPACT_REV)

    async def get(self, key: str) -> KeyValue:
        validate_key(key)
        self._check_open()
        # One indexed row: cheaper on the loop's own connection than a hop to a reader thread and back.
        row = self._read_latest(self._local, key)
        if row is None or row[1]:
            raise KeyNotFound(key)
        return KeyValue(key, row[3], row[0], row[2])

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_after: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        validate_prefix(prefix)
        if revision < 0 or limit < 0:
            raise ValueError("revision and limit must not be negative")
        at, rows = await self._read(self._read_list, prefix, continue_after, limit, revision)
        more = bool(limit) and len(rows) > limit
        items = [KeyValue(key, value, rev, created) for key, rev, created, value in rows[: limit or None]]
        return ListResult(items=items, revision=at, more=more)

    # -- writes -------------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        validate_key(key)
        validate_value(value)
        kv: KeyValue = await self._submit(_Create(self._loop.create_future(), key, bytes(value)))
        return kv

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        validate_key(key)
        validate_value(value)
        kv: KeyValue = await self._submit(
            _Update(self._loop.create_future(), key, bytes(value), expected_revision)
        )
        return kv

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        validate_key(key)
        kv: KeyValue = await self._submit(_Delete(self._loop.create_future(), key, expected_revision))
        return kv

    # -- watch --------------------------------------------------------------------------------------

    async def _history(
        self, prefix: str, from_revision: int, to_revision: int
    ) -> AsyncGenerator[Event, None]:
        after = from_revision
        while True:
            compacted, rows = await self._read(self._read_events, prefix, after, to_revision, REPLAY_CHUNK)
            if after + 1 < compacted:
                raise Compacted(after + 1, compacted)
            for row in rows:
                yield _event(row)
            if len(rows) < REPLAY_CHUNK:
                return
            after = rows[-1][0]

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        self._check_open()
        validate_prefix(prefix)
        if from_revision < 0:
            raise ValueError("from_revision must not be negative")
        return watch_events(self._hub, self._history, prefix, from_revision)

    # -- compaction ---------------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        async with self._compact_lock:
            started = await self._submit(_CompactStart(self._loop.create_future(), revision))
            if started is None:
                return
            target, start = started
            # Publish everything below the target first, so no watcher loses rows it was owed.
            await self._wait_published(target - 1)
            while start < target:
                start = await self._submit(_CompactStep(self._loop.create_future(), start, target))

    async def _compact_loop(self) -> None:
        samples: collections.deque[tuple[float, int]] = collections.deque()  # (time, revision then)
        while True:
            await asyncio.sleep(self._compact_interval)  # a periodic timer
            try:
                now, newest = time.monotonic(), _scalar(self._local, _SEQUENCE)
                samples.append((now, newest))
                while len(samples) > 1 and now - samples[1][0] >= self._retention_seconds:
                    samples.popleft()
                by_time = samples[0][1] if now - samples[0][0] >= self._retention_seconds else 0
                target = min(by_time, newest - self._retention_revisions)
                if target > _scalar(self._local, _COMPACT_REV):
                    await self.compact(target)
            except (StoreError, sqlite3.Error) as e:
                log.warning("sqlite store: background compaction failed: %s", e)

    async def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints never block the writer or readers; they copy what they can of the WAL into
        the database, and the writer restarts the WAL once a checkpoint has caught up."""
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)  # a periodic timer
            try:
                await asyncio.to_thread(self._checkpointer.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as e:
                log.warning("sqlite store: checkpoint failed: %s", e)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._tasks)
        if self._pending:  # accepted writes still commit
            self._flush()
        self._queue.put(_STOP)  # queued writes before it still commit
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._executor.shutdown, True)
        for conn in [*self._all_readers, self._local, self._loop_writer]:
            conn.close()
        with contextlib.suppress(sqlite3.Error):  # leave a short WAL behind for the next open
            self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._checkpointer.close()
        self._hub.end_all()
        for _, fut in self._published_waiters:
            if not fut.done():
                fut.set_exception(StoreClosed("the store is closed"))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")
