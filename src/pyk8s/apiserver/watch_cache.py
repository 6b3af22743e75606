"""The watch cache: every stored object in memory, kept current by one store watch, serving watches
and cached lists without touching the store.

One watch of the whole keyspace feeds every resource's cache, so each cache knows the store's global
revision (a resourceVersion from any resource can be waited for, and a consistent list is "wait until
the cache reached the store's current revision, then read memory", like Kubernetes' consistent reads
from cache). Each resource keeps a bounded ring of recent events: a watch from a resourceVersion the
ring still covers replays from memory; an older one is 410 Gone and the client relists. An event is
encoded once and the bytes are shared by every watcher; a watcher whose buffer is full is closed
instead of slowing the others.

Objects are held encoded (JSON bytes, resourceVersion included) and decoded afresh when read. Held as
dicts, every cached pod was ~33 containers the garbage collector traverses: the cache was nearly all of
the server's young generation, and each gen-0 collection (one per ~600 pod creates) paused the loop for
10-20 ms with nothing to collect; a gen-1 one would take hundreds. Bytes are invisible to the collector,
and a cached list is sent by splicing the bytes into the reply, without decoding or re-encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import orjson

from pyk8s.api import errors
from pyk8s.store.errors import Compacted, StoreClosed, WatchOverflow
from pyk8s.store.protocol import Event, EventType, KeyValue, Store
from pyk8s.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Matcher = Callable[[Obj], bool]

RING_SIZE = 1024
WATCHER_BUFFER = 2048
FRESHNESS_TIMEOUT = 3.0
_REGISTRY = "/registry/"


def decode(kv: KeyValue) -> Obj:
    """A stored object with its resourceVersion (stored values never carry one)."""
    obj: Obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode(obj: Obj) -> bytes:
    return orjson.dumps(obj)


# A stored value's head up to the inside of its top-level metadata. Only apiVersion and kind, plain strings,
# may come before it, so a match is the top level's metadata, never one nested in a template.
_META_HEAD = re.compile(rb'\{(?:"(?:apiVersion|kind)":"[^"\\]*",){0,2}"metadata":\{')


def encode_with_revision(kv: KeyValue) -> bytes:
    """encode(decode(kv)), without the round trip when the layout allows: the revision spliced in as
    metadata's first member (decoding and re-encoding each event was 3 % of a busy server's CPU)."""
    value = kv.value
    head = _META_HEAD.match(value)
    if head is None or b'"resourceVersion"' in value:  # an Event's involvedObject has one: decode
        return encode(decode(kv))
    end = head.end()
    rv = b'"resourceVersion":"%d"' % kv.mod_revision
    return value[:end] + rv + (b"" if value[end : end + 1] == b"}" else b",") + value[end:]


def event_line(type_: str, raw: bytes) -> bytes:
    """A watch event line around an encoded object."""
    return b'{"type":"' + type_.encode() + b'","object":' + raw + b"}\n"


class EncodedObjects(MutableMapping[str, Obj]):
    """key → object, held encoded; reading decodes a fresh copy (callers may change it freely)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, bytes] | None = None) -> None:
        self.raw: dict[str, bytes] = raw if raw is not None else {}

    def __getitem__(self, key: str) -> Obj:
        obj: Obj = orjson.loads(self.raw[key])
        return obj

    def __setitem__(self, key: str, obj: Obj) -> None:
        self.raw[key] = encode(obj)

    def __delitem__(self, key: str) -> None:
        del self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def resource_prefix(key: str) -> str | None:
    """/registry/<group>/<plural>/ of a key, or None for keys outside the registry."""
    if not key.startswith(_REGISTRY):
        return None
    parts = key.split("/", 4)
    if len(parts) < 5:
        return None
    return f"/registry/{parts[2]}/{parts[3]}/"


class CacheEvent:
    """One change, held encoded (the ring keeps ~1,000 of them). `obj` and `prev` decode on first use and
    are kept while the event is offered to watchers (each selector reads them), then dropped."""

    __slots__ = ("_lines", "_obj", "_prev", "key", "prev_raw", "raw", "revision", "type")

    def __init__(self, type_: str, revision: int, key: str, raw: bytes, prev_raw: bytes | None) -> None:
        self.type = type_  # ADDED, MODIFIED, DELETED
        self.revision = revision
        self.key = key
        self.raw = raw  # for DELETED: the last state, with the delete's resourceVersion
        self.prev_raw = prev_raw  # the cached state before, if any
        self._obj: Obj | None = None
        self._prev: Obj | None = None
        self._lines: dict[str, bytes] = {}

    @property
    def obj(self) -> Obj:
        if self._obj is None:
            self._obj = orjson.loads(self.raw)
        return self._obj

    @property
    def prev(self) -> Obj | None:
        if self._prev is None and self.prev_raw is not None:
            self._prev = orjson.loads(self.prev_raw)
        return self._prev

    def forget_decoded(self) -> None:
        """Drop the decoded copies: what the ring keeps stays out of the garbage collector's way."""
        self._obj = None
        self._prev = None

    def line(self, type_: str | None = None) -> bytes:
        """The watch line for this event as `type_` (default its own type), encoded once."""
        t = type_ or self.type
        out = self._lines.get(t)
        if out is None:
            prev = self.prev if t == "DELETED" and self.type == "MODIFIED" else None
            if prev is not None:
                # The object left a watcher's selection: Kubernetes sends the old state, at the new RV.
                meta = {**prev.get("metadata", {}), "resourceVersion": str(self.revision)}
                out = event_line(t, encode({**prev, "metadata": meta}))
            else:
                out = event_line(t, self.raw)
            self._lines[t] = out
        return out


class Watcher:
    """One open watch: a bounded buffer of encoded lines, filled by the cache, drained by the HTTP
    handler."""

    def __init__(self, cache: ResourceCache, key_prefix: str, matcher: Matcher | None) -> None:
        self._cache = cache
        self.key_prefix = key_prefix
        self.matcher = matcher
        self.buffer: deque[bytes] = deque()
        self.closed = False
        self.overflowed = False
        self.last_revision = 0
        self._waiter: asyncio.Future[None] | None = None  # the handler's wait(), if it is waiting

    def offer(self, ev: CacheEvent) -> None:
        if self.closed or not ev.key.startswith(self.key_prefix):
            return
        t: str | None = ev.type
        if self.matcher is not None:
            t = _transition(ev, self.matcher)
            if t is None:
                return
        self.push(ev.line(t), ev.revision)

    def push(self, line: bytes, revision: int) -> None:
        if len(self.buffer) >= WATCHER_BUFFER:
            self.overflowed = True
            self.close()
            return
        self.buffer.append(line)
        self.last_revision = revision
        self._wake()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cache.watchers.discard(self)
            self._wake()

    def _wake(self) -> None:
        _resolve(self._waiter)

    async def wait(self, max_wait: float | None) -> None:
        """Until there is something to send, the watcher is closed, or `max_wait` passes. A bare future
        and timer: wait_for(Event.wait()) made a task per wake-up, ~10 µs more for each watcher and event
        (1,000 watchers of one event: ~10 ms)."""
        if self.buffer or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(max_wait, _resolve, waiter) if max_wait is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def drain(self) -> list[bytes]:
        out = list(self.buffer)
        self.buffer.clear()
        return out


def _resolve(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _transition(ev: CacheEvent, matcher: Matcher) -> str | None:
    if ev.type == "ADDED":
        return "ADDED" if matcher(ev.obj) else None
    if ev.type == "DELETED":
        return "DELETED" if matcher(ev.obj) else None
    now = matcher(ev.obj)
    before = ev.prev is not None and matcher(ev.prev)
    if now:
        return "MODIFIED" if before else "ADDED"
    return "DELETED" if before else None


class ResourceCache:
    """The objects of one resource (one key prefix), a ring of recent events, and the open watches."""

    def __init__(self, prefix: str, revision: int) -> None:
        self.prefix = prefix
        self.objects = EncodedObjects()  # a relist replaces it (auth's RBAC cache notices by identity)
        self._sorted: list[str] | None = None
        self.ring: deque[CacheEvent] = deque()
        self.ring_start = revision  # every event after this revision is in the ring
        self.watchers: set[Watcher] = set()
        self.ring_size = RING_SIZE

    def sorted_keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.objects.raw)
        return self._sorted

    def apply(self, ev: Event) -> None:
        key = ev.kv.key
        raws = self.objects.raw
        prev = raws.get(key)
        raw = encode_with_revision(ev.kv)
        if ev.type is EventType.DELETE:
            raws.pop(key, None)
            self._sorted = None
            cev = CacheEvent("DELETED", ev.kv.mod_revision, key, raw, prev)
        else:
            if prev is None:
                self._sorted = None
            raws[key] = raw
            cev = CacheEvent("ADDED" if prev is None else "MODIFIED", ev.kv.mod_revision, key, raw, prev)
        self.ring.append(cev)
        if len(self.ring) > self.ring_size:
            self.ring_start = self.ring.popleft().revision
        for w in tuple(self.watchers):
            w.offer(cev)
        cev.forget_decoded()

    def reset(self, items: Iterable[KeyValue], revision: int) -> None:
        """After a relist: new contents, an empty ring, and every watch closed (clients re-watch)."""
        self.objects = EncodedObjects({kv.key: encode_with_revision(kv) for kv in items})
        self._sorted = None
        self.ring.clear()
        self.ring_start = revision
        for w in tuple(self.watchers):
            w.close()

    def list_encoded(self, key_prefix: str, matcher: Matcher | None) -> list[bytes]:
        """The matching objects under `key_prefix`, in key order, encoded (only a matcher decodes)."""
        raws = self.objects.raw
        out = []
        for key in self.sorted_keys():
            if key.startswith(key_prefix):
                raw = raws[key]
                if matcher is None or matcher(orjson.loads(raw)):
                    out.append(raw)
        return out

    def list(self, key_prefix: str, matcher: Matcher | None) -> list[Obj]:
        """As `list_encoded`, decoded (fresh copies)."""
        out = []
        for raw in self.list_encoded(key_prefix, None):
            obj: Obj = orjson.loads(raw)
            if matcher is None or matcher(obj):
                out.append(obj)
        return out

    def watch(
        self,
        from_revision: int | None,
        current: int,
        key_prefix: str,
        matcher: Matcher | None,
        initial_events: bool,
    ) -> Watcher:
        """A watcher that sees every event after `from_revision` (None: from now), optionally preceded
        by ADDED for every current object. Raises 410 when the ring no longer covers `from_revision`."""
        w = Watcher(self, key_prefix, matcher)
        if initial_events:
            for raw in self.list_encoded(key_prefix, matcher):
                w.push(event_line("ADDED", raw), current)
        if from_revision is not None and from_revision < current:
            if from_revision < self.ring_start:
                raise errors.gone(f"too old resource version: {from_revision} ({self.ring_start + 1})")
            for ev in self.ring:
                if ev.revision > from_revision:
                    w.offer(ev)
                    ev.forget_decoded()
        w.last_revision = max(w.last_revision, current if from_revision is None else from_revision)
        if not w.closed:
            self.watchers.add(w)
        return w


class WatchCacheSet:
    """Every resource's cache, fed by one store watch."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.caches: dict[str, ResourceCache] = {}
        self.revision = 0
        self._listed_at = 0  # revision of the last (re)list
        self.synced = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    def cache(self, prefix: str) -> ResourceCache:
        c = self.caches.get(prefix)
        if c is None:
            # Every event since the last list passed through here and none was for this prefix: it is
            # empty, and its (empty) history is complete since that list.
            c = self.caches[prefix] = ResourceCache(prefix, self._listed_at)
        return c

    async def start(self) -> None:
        await self._relist()
        self._task = asyncio.create_task(self._run(), name="watch-cache")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        for c in self.caches.values():
            for w in tuple(c.watchers):
                w.close()

    async def _relist(self) -> None:
        result = await self.store.list(_REGISTRY)
        by_prefix: dict[str, list[KeyValue]] = {}
        for kv in result.items:
            p = resource_prefix(kv.key)
            if p is not None:
                by_prefix.setdefault(p, []).append(kv)
        self.revision = max(self.revision, result.revision)
        self._listed_at = result.revision
        for p in set(by_prefix) | set(self.caches):
            self.cache(p).reset(by_prefix.get(p, ()), result.revision)
        self.synced.set()
        self._wake_waiters()

    async def _run(self) -> None:
        from_rev = self.revision
        while True:
            try:
                async with contextlib.aclosing(self.store.watch(_REGISTRY, from_rev)) as events:
                    async for ev in events:
                        self._dispatch(ev)
                        from_rev = ev.revision
                return  # the store ended the watch: it is closing
            except WatchOverflow as e:
                from_rev = e.last_revision
            except Compacted:
                log.info("watch cache: history compacted; relisting")
                await self._relist_until_ok()
                from_rev = self.revision
            except StoreClosed:
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch cache: store watch failed; relisting")
                await asyncio.sleep(0.5)
                await self._relist_until_ok()
                from_rev = self.revision

    async def _relist_until_ok(self) -> None:
        while True:
            try:
                await self._relist()
                return
            except StoreClosed:
                raise
            except Exception:
                log.exception("watch cache: relist failed")
                await asyncio.sleep(1)

    def _dispatch(self, ev: Event) -> None:
        p = resource_prefix(ev.kv.key)
        if p is not None:
            self.cache(p).apply(ev)
        if ev.revision > self.revision:
            self.revision = ev.revision
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        if not self._waiters:
            return
        keep = []
        for rev, fut in self._waiters:
            if rev <= self.revision:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((rev, fut))
        self._waiters = keep

    async def wait_for(self, revision: int, max_wait: float = FRESHNESS_TIMEOUT) -> None:
        """Until the caches reflect `revision`; 504 Timeout (as Kubernetes) if they don't in time."""
        if revision <= self.revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        try:
            await asyncio.wait_for(fut, max_wait)
        except TimeoutError:
            self._waiters = [(r, f) for r, f in self._waiters if f is not fut]
            raise errors.StatusError(
                504,
                "Timeout",
                f"Too large resource version: {revision}, current: {self.revision}",
                {
                    "causes": [
                        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                    ],
                    "retryAfterSeconds": 1,
                },
            ) from None
