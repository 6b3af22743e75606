"""Errors every store driver raises; the API server maps each to a Kubernetes Status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyk8s.store.protocol import KeyValue


class StoreError(Exception):
    """Base of every store error."""


class KeyExists(StoreError):
    """create() found the key already present (API: 409 AlreadyExists)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class KeyNotFound(StoreError):
    """The key is absent (API: 404 NotFound)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class Conflict(StoreError):
    """A compare-and-swap saw another revision than expected (API: 409 Conflict).

    `current` is the value now stored, so callers can retry without another read.
    """

    def __init__(self, key: str, expected_revision: int, current: KeyValue) -> None:
        super().__init__(
            f"key {key!r} is at revision {current.mod_revision}, not the expected {expected_revision}"
        )
        self.key = key
        self.expected_revision = expected_revision
        self.current = current


class Compacted(StoreError):
    """The revision asked for is below the compaction point (API: 410 Gone); relist."""

    def __init__(self, requested_revision: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested_revision} has been compacted; oldest available is {compact_revision}"
        )
        self.requested_revision = requested_revision
        self.compact_revision = compact_revision


class WatchOverflow(StoreError):
    """A watcher fell behind and its bounded buffer overflowed; resume from `last_revision`.

    Every event up to and including `last_revision` was delivered; a new watch from it misses nothing
    (or ends with Compacted, and then the caller relists).
    """

    def __init__(self, last_revision: int) -> None:
        super().__init__(f"watcher fell behind; resume from revision {last_revision}")
        self.last_revision = last_revision


class InvalidKey(StoreError):
    """The key breaks the store's rules (see protocol.validate_key)."""


class InvalidValue(StoreError):
    """The value breaks the store's rules (see protocol.validate_value)."""


class StoreClosed(StoreError):
    """The store was closed while the call was waiting."""
