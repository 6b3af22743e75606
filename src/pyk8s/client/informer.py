"""Shared informers: one list+watch per (resource, namespace, selectors) feeding a cache and event handlers.

The loop is client-go's Reflector and kopf's continuous_watch: list (paginated), replace the cache, watch
from the list's resourceVersion with bookmarks, keep the newest resourceVersion seen, re-watch from it when
the server ends a watch cleanly, relist when the server answers 410 Gone (the resourceVersion is older than
its history), and back off on any other failure. A relist that finds an object gone reports it to
on_delete as a `DeletedFinalStateUnknown`, since the real delete event was missed; an object whose
resourceVersion changed meanwhile is reported to on_update, an unchanged one is not reported again.
A failed watch (connection lost, server error) is retried from the same resourceVersion after a backoff,
as client-go does; only a 410 answer costs a relist.

Handlers run in the informer's own task, one event at a time, in the order the cache changed; they must be
quick (enqueue a key, as a controller does). A handler may be a plain function or a coroutine function.
A handler belongs to the HANDLER_OWNER set where it was added (a leadership term of the controller
manager), so informers can outlive their users: `remove_handlers(owner)` detaches a term's handlers
while the informers go on serving another component of the process (client-go's RemoveEventHandler).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.api.resource import ResourceInfo
from pyk8s.client.cache import DeletedFinalStateUnknown, Indexer, IndexFunc, Lister, object_key
from pyk8s.client.client import Client, Obj
from pyk8s.util.backoff import Backoff
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["HANDLER_OWNER", "SharedInformer", "SharedInformerFactory"]

log = logging.getLogger(__name__)

Callback = Callable[..., Awaitable[None] | None]
# (group, version, plural, namespace, label selector, field selector)
InformerKey = tuple[str, str, str, str | None, str | None, str | None]


# Who handlers added in this context belong to (None: the process). Tasks inherit it from their creator,
# so handlers a term's controllers add later (the garbage collector's, for resources found afterwards)
# belong to the term too.
HANDLER_OWNER: ContextVar[object | None] = ContextVar("HANDLER_OWNER", default=None)


@dataclass(slots=True, eq=False)
class _Handler:
    on_add: Callback | None
    on_update: Callback | None
    on_delete: Callback | None
    owner: object | None
    removed: bool = False


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class SharedInformer:
    """One resource's cache kept current by list+watch. Create it through SharedInformerFactory."""

    def __init__(self, client: Client, info: ResourceInfo, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, page_size: int = 500,
                 watch_timeout: tuple[int, int] = (300, 600)) -> None:
        self.client = client
        self.info = info
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        # Each watch asks the server to end it after a random time in this range (client-go: 5 to 10 min),
        # so that many clients do not re-watch at the same moment.
        self.watch_timeout = watch_timeout
        self.indexer = Indexer()
        self.lister = Lister(self.indexer)
        self.resource_version = ""
        # Counters, for tests and metrics: how often this informer listed and opened a watch.
        self.lists = 0
        self.watches = 0
        self._handlers: list[_Handler] = []
        self._joining: dict[_Handler, asyncio.Task[None]] = {}  # added, being told about the cache
        self._lock = asyncio.Lock()  # orders cache changes and handler calls
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None

    # --- the public face ---------------------------------------------------------------------------

    def add_handler(self, on_add: Callback | None = None, on_update: Callback | None = None,
                    on_delete: Callback | None = None) -> None:
        """on_add(obj), on_update(old, new), on_delete(obj or DeletedFinalStateUnknown). A handler added
        after objects are cached first receives on_add for each of them, before any later event."""
        handler = _Handler(on_add, on_update, on_delete, HANDLER_OWNER.get())
        if not self.indexer and not self._lock.locked():
            self._handlers.append(handler)
            return
        self._joining[handler] = asyncio.get_running_loop().create_task(self._join(handler))

    def remove_handlers(self, owner: object) -> None:
        """Detach the handlers `owner` added: they receive nothing more (nor the rest of a replay)."""
        for h in (*self._handlers, *self._joining):
            if h.owner is owner:
                h.removed = True
        # A new list, not an edit: a _notify iterating the old one finishes undisturbed.
        self._handlers = [h for h in self._handlers if not h.removed]

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self.indexer.add_index(name, fn)

    def has_synced(self) -> bool:
        """True once the first list is in the cache (and handlers were told about it)."""
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        """Until the first list is in and the handlers added so far have been told about the cache."""
        await self._synced.wait()
        if self._joining:
            await asyncio.wait(list(self._joining.values()))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"informer {self.info.group_resource}")
            if self.resync_period:
                self._resync_task = loop.create_task(self._resync_loop(self.resync_period))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._resync_task, *self._joining.values()) if t is not None]
        await cancel_and_wait(tasks)
        self._joining.clear()
        self._task = self._resync_task = None

    # --- list and watch ----------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(0.8, 30.0, jitter=1.0)
        while True:
            try:
                await self._list()
                backoff.reset()
                await self._watch()  # returns when a relist is needed
            except asyncio.CancelledError:
                raise
            except Exception as e:
                delay = backoff.next()
                log.warning("informer %s: list failed (%s); retrying in %.1fs", self.info.group_resource, e,
                            delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        self.lists += 1
        result = await self.client.list_all(self.info, self.namespace, label_selector=self.label_selector,
                                            field_selector=self.field_selector, page_size=self.page_size)
        await self._replace(result.get("items") or [], _rv(result))

    async def _watch(self) -> None:
        backoff = Backoff(0.8, 30.0, jitter=1.0)
        while True:
            self.watches += 1
            events = self.client.watch(
                self.info, self.namespace, resource_version=self.resource_version,
                label_selector=self.label_selector, field_selector=self.field_selector,
                allow_bookmarks=True, timeout_seconds=random.randint(*self.watch_timeout))
            try:
                # aclosing: a cancelled informer closes its watch request at once.
                async with contextlib.aclosing(events):
                    async for kind, obj in events:
                        await self._apply(kind, obj)
                        backoff.reset()
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                if e.code == 410:
                    log.info("informer %s: %s; relisting", self.info.group_resource, e.message)
                    return
                await self._pause(backoff, e)
            except Exception as e:
                await self._pause(backoff, e)

    async def _pause(self, backoff: Backoff, error: Exception) -> None:
        delay = backoff.next()
        log.warning("informer %s: watch failed (%s); re-watching in %.1fs", self.info.group_resource,
                    error or type(error).__name__, delay)
        await asyncio.sleep(delay)

    # --- cache changes and handlers ----------------------------------------------------------------

    async def _replace(self, items: list[Obj], resource_version: str) -> None:
        async with self._lock:
            fresh = {object_key(obj): obj for obj in items}
            for key in [k for k in self.indexer if k not in fresh]:
                old = self.indexer.delete(key)
                if old is not None:
                    await self._notify("on_delete", DeletedFinalStateUnknown(key, old))
            for key, obj in fresh.items():
                old = self.indexer.put(key, obj)
                if old is None:
                    await self._notify("on_add", obj)
                elif _rv(old) != _rv(obj):
                    await self._notify("on_update", old, obj)
            self.resource_version = resource_version
            self._synced.set()

    async def _apply(self, kind: str, obj: Obj) -> None:
        async with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                old = self.indexer.put(object_key(obj), obj)
                if old is None:
                    await self._notify("on_add", obj)
                else:
                    await self._notify("on_update", old, obj)
            elif kind == "DELETED":
                self.indexer.delete(object_key(obj))
                await self._notify("on_delete", obj)
            rv = _rv(obj)
            if rv:
                self.resource_version = rv

    async def _notify(self, which: str, *args: Any) -> None:
        # _call inlined: this runs for every event and every handler (a pod informer of the controller
        # manager has a dozen), and most handlers are plain functions that only enqueue.
        for handler in self._handlers:
            fn = getattr(handler, which)
            if fn is None:
                continue
            try:
                result = fn(*args)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("informer %s: event handler failed", self.info.group_resource)

    async def _call(self, fn: Callback | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("informer %s: event handler failed", self.info.group_resource)

    async def _join(self, handler: _Handler) -> None:
        try:
            async with self._lock:
                for obj in self.indexer.list():
                    if handler.removed:
                        return
                    await self._call(handler.on_add, obj)
                if not handler.removed:
                    self._handlers.append(handler)
        finally:
            self._joining.pop(handler, None)

    async def _resync_loop(self, period: float) -> None:
        """Every period, on_update(obj, obj) for every cached object, so controllers re-check them."""
        while True:
            await asyncio.sleep(period)
            async with self._lock:
                for obj in self.indexer.list():
                    await self._notify("on_update", obj, obj)


class SharedInformerFactory:
    """One informer per (resource, namespace, label selector, field selector) for a whole process."""

    def __init__(self, client: Client, *, resync_period: float | None = None,
                 watch_timeout: tuple[int, int] = (300, 600)) -> None:
        self.client = client
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._started = False

    def informer(self, info: ResourceInfo, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """The shared informer; asked for after `start()`, it starts at once."""
        key: InformerKey = (info.group, info.version, info.plural, namespace, label_selector or None,
                            field_selector or None)
        inf = self._informers.get(key)
        if inf is None:
            inf = SharedInformer(self.client, info, namespace, label_selector=label_selector or None,
                                 field_selector=field_selector or None, resync_period=self.resync_period,
                                 watch_timeout=self.watch_timeout)
            self._informers[key] = inf
            if self._started:
                inf.start()
        return inf

    def lister(self, info: ResourceInfo, namespace: str | None = None) -> Lister:
        return self.informer(info, namespace).lister

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    def start(self) -> None:
        self._started = True
        for inf in self._informers.values():
            inf.start()

    def has_synced(self) -> bool:
        return all(inf.has_synced() for inf in self._informers.values())

    async def wait_for_sync(self, informers: Iterable[SharedInformer] | None = None) -> None:
        """Wait until every informer (or those given: a component sharing the factory waits for its own)
        listed once. Bound it with `asyncio.timeout`."""
        chosen = self._informers.values() if informers is None else informers
        await asyncio.gather(*(inf.wait_for_sync() for inf in chosen))

    def remove_handlers(self, owner: object) -> None:
        for inf in self._informers.values():
            inf.remove_handlers(owner)

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))
        self._started = False
