"""The revisioned key-value store every object lives in.

`protocol.Store` is the contract; `open_store(url)` picks a driver: sqlite (the default), etcd, memory.
"""

from pyk8s.store.errors import (
    Compacted,
    Conflict,
    InvalidKey,
    InvalidValue,
    KeyExists,
    KeyNotFound,
    StoreClosed,
    StoreError,
    WatchOverflow,
)
from pyk8s.store.protocol import Event, EventType, KeyValue, ListResult, Store

__all__ = [
    "Compacted",
    "Conflict",
    "Event",
    "EventType",
    "InvalidKey",
    "InvalidValue",
    "KeyExists",
    "KeyNotFound",
    "KeyValue",
    "ListResult",
    "Store",
    "StoreClosed",
    "StoreError",
    "WatchOverflow",
]
