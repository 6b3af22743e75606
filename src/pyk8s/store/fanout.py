"""Fan-out of store events to watchers, each behind a bounded buffer.

The memory and sqlite drivers publish every change once, in revision order, to one `WatchHub`; the hub
copies it to the buffer of every subscription whose prefix matches. A subscriber that lets its buffer
fill is cut off (it stops receiving) and, once it has drained what it holds, ends with WatchOverflow:
a slow watcher costs a bounded amount of memory and never slows a writer.

`watch_events` joins history and live events without a gap or a duplicate: it subscribes first, notes
the hub's revision R at that instant (every later event has a revision above R), replays history up to
R, then follows the subscription.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable

from pyk8s.store.errors import WatchOverflow
from pyk8s.store.protocol import Event

# Reads the events under a prefix with from_revision < revision <= to_revision, in order; raises
# Compacted when that history is gone.
HistoryReader = Callable[[str, int, int], AsyncIterator[Event]]


class Subscription:
    """One watcher's bounded buffer of live events."""

    __slots__ = ("_buffer", "_ended", "_error", "_hub", "_limit", "_wakeup", "overflowed", "prefix")

    def __init__(self, hub: WatchHub, prefix: str, limit: int) -> None:
        self._hub = hub
        self.prefix = prefix
        self._limit = limit
        self._buffer: collections.deque[Event] = collections.deque()
        self._wakeup = asyncio.Event()
        self._ended = False
        self._error: BaseException | None = None
        self.overflowed = False

    def _offer(self, event: Event) -> None:
        if len(self._buffer) >= self._limit:
            # Cut off: drop from the hub so nothing more is buffered for a consumer that is behind.
            self.overflowed = True
            self._hub._remove(self)
        else:
            self._buffer.append(event)
        self._wakeup.set()

    def _end(self, error: BaseException | None) -> None:
        self._ended = True
        self._error = error
        self._wakeup.set()

    async def get(self, last_revision: int) -> Event | None:
        """The next buffered event; None when the hub ended the watch cleanly. Raises WatchOverflow
        (resume from `last_revision`, the caller's newest delivered revision) after a cut-off, or the
        error the hub ended the subscription with."""
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self.overflowed:
                raise WatchOverflow(last_revision)
            if self._ended:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._buffer.popleft()

    def close(self) -> None:
        self._hub._remove(self)
        self._buffer.clear()


class WatchHub:
    """Publishes events, in revision order, to every matching subscription."""

    def __init__(self, buffer: int, revision: int = 0) -> None:
        if buffer < 1:
            raise ValueError("watch buffer must hold at least one event")
        self._buffer = buffer
        self.revision = revision  # newest revision published
        self._by_prefix: dict[str, set[Subscription]] = {}

    def subscribe(self, prefix: str) -> Subscription:
        sub = Subscription(self, prefix, self._buffer)
        self._by_prefix.setdefault(prefix, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._by_prefix.get(sub.prefix)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_prefix[sub.prefix]

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            key = event.kv.key
            # Copy: an overflowing subscription removes itself while we iterate.
            for prefix, subs in list(self._by_prefix.items()):
                if key.startswith(prefix):
                    for sub in list(subs):
                        sub._offer(event)
            self.revision = event.revision

    def advance(self, revision: int) -> None:
        """Record that everything up to `revision` was published (e.g. after a skipped gap)."""
        self.revision = max(self.revision, revision)

    def end_all(self, error: BaseException | None = None) -> None:
        """End every subscription: cleanly (None) or with `error` (e.g. Compacted, StoreClosed)."""
        subs = [sub for group in self._by_prefix.values() for sub in group]
        self._by_prefix.clear()
        for sub in subs:
            sub._end(error)


async def watch_events(
    hub: WatchHub, read_history: HistoryReader, prefix: str, from_revision: int
) -> AsyncGenerator[Event, None]:
    """Every event under `prefix` after `from_revision`: history from `read_history`, then live events."""
    sub = hub.subscribe(prefix)
    try:
        last = from_revision
        upto = hub.revision
        async for event in read_history(prefix, from_revision, upto):
            yield event
            last = event.revision
        # History is complete up to `upto`; live events all come after it.
        last = max(last, upto)
        while True:
            live = await sub.get(last)
            if live is None:
                return
            if live.revision <= last:
                continue
            yield live
            last = live.revision
    finally:
        sub.close()
