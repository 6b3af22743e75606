"""The informer's local cache: objects by `namespace/name` key, with secondary indexes, and read-only listers.

As client-go's cache.Indexer: an index function maps an object to zero or more values; `by_index(name,
value)` answers every object with that value without scanning. The `namespace` index is built in;
controllers add theirs (`owner_uid_index`, `node_name_index` are ready-made).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pyk8s.api.labels import Selector, parse_selector

__all__ = ["NAMESPACE_INDEX", "NODE_NAME_INDEX", "OWNER_UID_INDEX", "DeletedFinalStateUnknown", "IndexFunc",
           "Indexer", "Lister", "namespace_index", "node_name_index", "object_key", "owner_uid_index",
           "split_key"]

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner-uid"
NODE_NAME_INDEX = "node-name"


def object_key(obj: Obj | DeletedFinalStateUnknown) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object (client-go's MetaNamespaceKeyFunc)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def split_key(key: str) -> tuple[str | None, str]:
    """(namespace, name) of a key; namespace None for cluster-scoped keys."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, key)


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """Passed to on_delete when a relist finds an object gone: the delete itself was missed, so `obj`
    is the last state the cache knew, which may be stale."""

    key: str
    obj: Obj


def namespace_index(obj: Obj) -> builtins.list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def owner_uid_index(obj: Obj) -> builtins.list[str]:
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("uid")]


def node_name_index(obj: Obj) -> builtins.list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


class Indexer:
    """Objects by key plus indexes; written only by its informer."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> builtins.list[Obj]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        if index not in self._indices:
            raise KeyError(f"no index named {index!r}")
        return [self._items[k] for k in self._indices[index].get(value, ())]

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        if index not in self._indices:
            raise KeyError(f"no index named {index!r}")
        return list(self._indices[index].get(value, ()))

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Add an index (also after objects are in: they are indexed at once). Re-adding a name is an
        error, as two controllers meaning different things by one name would corrupt each other."""
        if name in self._index_funcs:
            if self._index_funcs[name] is fn:
                return
            raise ValueError(f"an index named {name!r} exists already")
        self._index_funcs[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj)

    def put(self, key: str, obj: Obj) -> Obj | None:
        """Store obj; returns the object it replaced."""
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._index_funcs:
            self._index_one(name, key, obj)
        return old

    def delete(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._index_funcs[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._index_funcs.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


class Lister:
    """A read-only view of an informer's cache. Objects returned are the cache's own: do not mutate them
    (copy first, as client-go's listers require)."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._indexer.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._indexer.get(key)

    def list(self, namespace: str | None = None,
             selector: Selector | str | None = None) -> builtins.list[Obj]:
        objs = self._indexer.by_index(NAMESPACE_INDEX, namespace) if namespace else self._indexer.list()
        if selector is None:
            return objs
        sel = parse_selector(selector) if isinstance(selector, str) else selector
        return [o for o in objs if sel.matches((o.get("metadata") or {}).get("labels"))]

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        return self._indexer.by_index(index, value)

    def __len__(self) -> int:
        return len(self._indexer)
