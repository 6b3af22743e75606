"""The store protocol: a narrow revision-based key-value contract, in the manner of kine.

One monotonic revision sequence per store; every write gets the next revision, and every stored value
carries the revision of its last modification (what the API calls `resourceVersion`). Keys are paths
("/registry/pods/default/web-0"); values are opaque bytes: the store knows nothing of kinds.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pyk8s.store.errors import InvalidKey, InvalidValue

MAX_KEY_BYTES = 1024
# Kubernetes caps request bodies at 3 MiB; the store accepts what the API server accepts.
MAX_VALUE_BYTES = 3 * 1024 * 1024


class EventType(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int  # revision of the write that produced this value (resourceVersion)
    create_revision: int  # revision of the create; unchanged by updates


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For DELETE, `kv.value` is the value that was deleted and `kv.mod_revision` is the
    revision of the delete itself; `prev_kv` is the value before the change (None for CREATE)."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]  # sorted by key
    revision: int  # the snapshot the items were read at
    more: bool  # True when `limit` cut the list short; continue after items[-1].key at `revision`


@runtime_checkable
class Store(Protocol):
    """Every driver (sqlite, etcd, memory) implements this and passes tests/store/conformance.py."""

    async def current_revision(self) -> int:
        """The newest revision: 0 for a never-written sqlite or memory store; etcd's own (a fresh etcd
        is at 1)."""
        ...

    async def compacted_revision(self) -> int:
        """The compaction point, as etcd and kine keep it: history below this revision is gone.

        A list at a revision below it raises Compacted, and so does a watch whose first needed
        revision (from_revision + 1) is below it. 0 when nothing was ever compacted."""
        ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Store a new key; KeyExists if it is present."""
        ...

    async def get(self, key: str) -> KeyValue:
        """The current value; KeyNotFound if absent."""
        ...

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_after: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        """Keys under `prefix`, sorted, as of one consistent `revision` (0: the newest).

        `limit` > 0 caps the count; `continue_after` resumes after that key. A revision below the
        compacted revision raises Compacted; one above the current revision is clamped to it.
        """
        ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        """Compare-and-swap: Conflict unless the key's mod_revision is `expected_revision`;
        KeyNotFound if absent."""
        ...

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        """Delete and return the deleted value (its mod_revision is the delete's revision).
        With `expected_revision`, Conflict unless it matches. KeyNotFound if absent."""
        ...

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        """Every change under `prefix` with revision > `from_revision`, in order, with no gap or
        duplicate. Raises Compacted (at once) when history after `from_revision` is gone, and
        WatchOverflow when the consumer falls too far behind. `aclose()` ends the watch."""
        ...

    async def compact(self, revision: int) -> None:
        """Drop history below `revision` (etcd's meaning), keeping the value every key had at
        `revision`. Compacting at or below the current compaction point does nothing."""
        ...

    async def close(self) -> None:
        """Stop background work and release the backend; pending watches end."""
        ...


def validate_key(key: str) -> None:
    """Keys are absolute, printable, NUL-free paths of at most MAX_KEY_BYTES bytes."""
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a str, not {type(key).__name__}")
    if not key.startswith("/"):
        raise InvalidKey(f"key {key!r} must start with '/'")
    if "\x00" in key or not key.isprintable():
        raise InvalidKey(f"key {key!r} contains NUL or non-printable characters")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes")


def validate_value(value: bytes) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidValue(f"value must be bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidValue(f"value of {len(value)} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes")


def validate_prefix(prefix: str) -> None:
    if prefix == "":
        return
    validate_key(prefix)
