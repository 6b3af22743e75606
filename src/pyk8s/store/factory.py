"""Chooses a driver from a datastore endpoint: sqlite:///PATH, etcd://HOST:PORT[,HOST:PORT…], memory://."""

from __future__ import annotations

from pyk8s.store.protocol import Store


async def open_store(endpoint: str) -> Store:
    """Open and start the store named by `endpoint`. The caller closes it."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ValueError(f"datastore endpoint {endpoint!r} has no scheme (sqlite://, etcd://, memory://)")
    if scheme == "sqlite":
        from pyk8s.store.sqlite import SqliteStore

        if not rest.startswith("/"):
            raise ValueError(f"sqlite endpoint {endpoint!r} needs an absolute path: sqlite:///PATH")
        return await SqliteStore.open(rest)
    if scheme == "etcd":
        from pyk8s.store.etcd import EtcdStore

        return await EtcdStore.open([h for h in rest.split(",") if h])
    if scheme == "memory":
        from pyk8s.store.memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unknown datastore scheme {scheme!r}: use sqlite, etcd or memory")
