"""The in-memory driver: the store protocol's semantics with no I/O, for fast tests.

Every key keeps its versions (a tombstone marks a delete), so a list at an old revision sees the values
of that time; one event log feeds watch replay. Every operation runs without awaiting in between, so on
one event loop each is atomic.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncGenerator

from pyk8s.store.errors import Compacted, Conflict, KeyExists, KeyNotFound, StoreClosed
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

DEFAULT_WATCH_BUFFER = 4096

# A version of a key: (revision, value or None for a delete).
_Version = tuple[int, KeyValue | None]


class MemoryStore:
    """A revisioned key-value store held in memory."""

    def __init__(self, *, watch_buffer: int = DEFAULT_WATCH_BUFFER) -> None:
        self._revision = 0
        self._compacted = 0
        self._versions: dict[str, list[_Version]] = {}
        self._keys: list[str] = []  # sorted keys of `_versions`
        self._log: list[Event] = []  # every event after the compaction point, in revision order
        self._hub = WatchHub(watch_buffer)
        self._closed = False

    # -- reads --------------------------------------------------------------------------------------

    async def current_revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    def _current(self, key: str) -> KeyValue | None:
        versions = self._versions.get(key)
        return versions[-1][1] if versions else None

    async def get(self, key: str) -> KeyValue:
        self._check_open()
        validate_key(key)
        kv = self._current(key)
        if kv is None:
            raise KeyNotFound(key)
        return kv

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_after: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        self._check_open()
        validate_prefix(prefix)
        if revision < 0 or limit < 0:
            raise ValueError("revision and limit must not be negative")
        at = self._revision if revision == 0 else min(revision, self._revision)
        if at < self._compacted:
            raise Compacted(at, self._compacted)
        if continue_after is None or continue_after < prefix:
            i = bisect.bisect_left(self._keys, prefix)
        else:
            i = bisect.bisect_right(self._keys, continue_after)
        items: list[KeyValue] = []
        more = False
        for key in self._keys[i:]:
            if not key.startswith(prefix):
                break
            versions = self._versions[key]
            j = bisect.bisect_right(versions, at, key=lambda v: v[0])
            if j == 0 or (kv := versions[j - 1][1]) is None:
                continue
            if limit and len(items) == limit:
                more = True
                break
            items.append(kv)
        return ListResult(items=items, revision=at, more=more)

    # -- writes -------------------------------------------------------------------------------------

    def _commit(self, key: str, kv: KeyValue | None, event: Event) -> None:
        versions = self._versions.get(key)
        if versions is None:
            versions = self._versions[key] = []
            bisect.insort(self._keys, key)
        versions.append((event.revision, kv))
        self._revision = event.revision
        self._log.append(event)
        self._hub.publish((event,))

    async def create(self, key: str, value: bytes) -> KeyValue:
        self._check_open()
        validate_key(key)
        validate_value(value)
        if self._current(key) is not None:
            raise KeyExists(key)
        rev = self._revision + 1
        kv = KeyValue(key, bytes(value), rev, rev)
        self._commit(key, kv, Event(EventType.CREATE, kv, None))
        return kv

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        self._check_open()
        validate_key(key)
        validate_value(value)
        prev = self._current(key)
        if prev is None:
            raise KeyNotFound(key)
        if prev.mod_revision != expected_revision:
            raise Conflict(key, expected_revision, prev)
        kv = KeyValue(key, bytes(value), self._revision + 1, prev.create_revision)
        self._commit(key, kv, Event(EventType.UPDATE, kv, prev))
        return kv

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        self._check_open()
        validate_key(key)
        prev = self._current(key)
        if prev is None:
            raise KeyNotFound(key)
        if expected_revision is not None and prev.mod_revision != expected_revision:
            raise Conflict(key, expected_revision, prev)
        kv = KeyValue(key, prev.value, self._revision + 1, prev.create_revision)
        self._commit(key, None, Event(EventType.DELETE, kv, prev))
        return kv

    # -- watch and compaction -----------------------------------------------------------------------

    async def _history(
        self, prefix: str, from_revision: int, to_revision: int
    ) -> AsyncGenerator[Event, None]:
        if from_revision + 1 < self._compacted:
            raise Compacted(from_revision + 1, self._compacted)
        first = self._log[0].revision if self._log else self._revision + 1
        # Copy the slice: the log may grow or be compacted while the consumer holds an event.
        for event in self._log[max(0, from_revision + 1 - first) : max(0, to_revision + 1 - first)]:
            if event.kv.key.startswith(prefix):
                yield event

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        self._check_open()
        validate_prefix(prefix)
        if from_revision < 0:
            raise ValueError("from_revision must not be negative")
        return watch_events(self._hub, self._history, prefix, from_revision)

    async def compact(self, revision: int) -> None:
        self._check_open()
        revision = min(revision, self._revision)
        if revision <= self._compacted:
            return
        self._compacted = revision
        # Keep each key's newest version below `revision` (unless a delete): it is the value at
        # revision - 1, which the first retained event needs as its prev_kv.
        for key in list(self._keys):
            versions = self._versions[key]
            j = bisect.bisect_left(versions, revision, key=lambda v: v[0])
            if j == 0:
                continue
            keep_from = j - 1 if versions[j - 1][1] is not None else j
            del versions[:keep_from]
            if not versions:
                del self._versions[key]
        self._keys = sorted(self._versions)
        first = self._log[0].revision if self._log else revision
        del self._log[: max(0, revision - first)]

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub.end_all()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")
