"""Server-side apply and managedFields, after structured-merge-diff (SMD) as the API server runs it.

Ownership is a set of field paths per manager (manager, operation, apiVersion, subresource), stored in
`metadata.managedFields` in the FieldsV1 format (`f:<field>`, `k:<json keys>`, `v:<json value>`, `.` for
"this node itself"). Path elements here are tuples: ("f", name), ("k", json of the sorted keys), ("v", json).

The schema is the PATCH_META table: lists with a merge strategy and key are associative (listType=map),
primitive merge lists are sets (listType=set), all other lists are atomic; objects are merged field by
field. Simplified against Kubernetes, knowingly:
- an associative list is keyed by its single patch merge key (Kubernetes keys container ports by
  containerPort *and* protocol);
- structs and maps are told apart by field name only (labels, annotations, data … are maps: owning one
  also owns the map itself, shown as `.`); everything else is a struct, and Kubernetes' pointer structs
  (shown with `.` when they appear) are not distinguished; label selectors are atomic, as Kubernetes';
- no version conversion: every entry is read as if written in the kind's served version;
- a null in an applied configuration removes the field rather than owning a null;
- the ten-entry cap on Update managers ("ancient-changes") is not applied.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from pyk8s.api.errors import Cause, StatusError, bad_request
from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.meta import now_rfc3339
from pyk8s.api.patch.meta import CORE, FieldPatch, definition_for, field_patch
from pyk8s.api.resource import ResourceInfo

Element = tuple[str, str]
Path = tuple[Element, ...]
ManagerKey = tuple[str, str, str, str]  # manager, operation, apiVersion, subresource

BEFORE_FIRST_APPLY = "before-first-apply"

# Never owned by anyone (SMD's strip set in the API server).
_IGNORED: frozenset[Path] = frozenset({
    (("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),),
    *((("f", "metadata"), ("f", name)) for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
        "managedFields", "resourceVersion")),
})
_MAP_FIELDS = frozenset({"labels", "annotations", "data", "binaryData", "stringData", "nodeSelector",
                         "matchLabels", "limits", "requests", "capacity", "allocatable", "hard", "used",
                         "parameters"})
_MAP_FIELDS_IN = frozenset({(CORE + "ServiceSpec", "selector"),
                            (CORE + "ReplicationControllerSpec", "selector")})
_MANAGED_FIELDS: Path = (("f", "metadata"), ("f", "managedFields"))
_NODE = object()  # the value recorded for list elements and maps themselves: never "modified"


def _dumps(value: Any) -> str:
    """Canonical compact JSON (sorted keys), as FieldsV1 keys and value comparisons need; orjson because
    this runs for every leaf of every written object."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _is_map(definition: str | None, name: str) -> bool:
    return name in _MAP_FIELDS or (definition, name) in _MAP_FIELDS_IN


_SELECTOR_FIELDS = frozenset({"selector", "podSelector", "namespaceSelector", "labelSelector"})


def _atomic_struct(definition: str | None, name: str, value: Any) -> bool:
    """LabelSelector is `structType=atomic` in Kubernetes: owned and replaced as one value."""
    return (name in _SELECTOR_FIELDS and not _is_map(definition, name) and isinstance(value, dict)
            and set(value) <= {"matchLabels", "matchExpressions"})


# Key fields of associative lists whose Kubernetes listMapKeys are more than the patch merge key, with the
# default a missing key field takes (protocol defaults to TCP): two ports 53/TCP and 53/UDP are distinct.
_PORT_KEYS = (("containerPort", None), ("protocol", "TCP"))
_LIST_MAP_KEYS: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {
    (CORE + "Container", "ports"): _PORT_KEYS,
    (CORE + "EphemeralContainer", "ports"): _PORT_KEYS,
    (CORE + "ServiceSpec", "ports"): (("port", None), ("protocol", "TCP")),
}
Keys = tuple[tuple[str, Any], ...]


def _keys(definition: str | None, name: str, fp: FieldPatch) -> Keys | None:
    """The key fields of an associative list, or None when the list is not one."""
    if not fp.merges or fp.merge_key is None:
        return None
    return _LIST_MAP_KEYS.get((definition or "", name), ((fp.merge_key, None),))


def _associative(keys: Keys | None, items: list[Any]) -> bool:
    return keys is not None and all(
        isinstance(e, dict) and all(k in e or default is not None for k, default in keys) for e in items)


def _set_list(fp: FieldPatch, items: list[Any]) -> bool:
    return fp.merges and fp.merge_key is None and not any(isinstance(e, dict | list) for e in items)


def _element_key(keys: Keys, element: dict[str, Any]) -> Element:
    return ("k", _dumps({k: element.get(k, default) for k, default in keys}))


# --- field sets of values ---------------------------------------------------------------------------------

class _Field:
    """What the walk needs to know of one (definition, field name), looked up once: this runs for every
    field of every written object."""

    __slots__ = ("element", "fp", "is_map", "keys", "selector", "set_list", "suffix")

    def __init__(self, definition: str | None, name: str) -> None:
        self.element: Element = ("f", name)
        self.suffix: Path = (self.element,)  # path + suffix builds a path faster than (*path, element)
        self.fp = fp = field_patch(definition, name)
        self.is_map = _is_map(definition, name)
        self.selector = name in _SELECTOR_FIELDS and not self.is_map
        self.keys = _keys(definition, name, fp)
        self.set_list = fp.merges and fp.merge_key is None


_FIELDS: dict[str | None, dict[str, _Field]] = {}
_FIELDS_PER_DEFINITION = 512  # field names come from clients: bound what is remembered


def _fields(definition: str | None) -> dict[str, _Field]:
    table = _FIELDS.get(definition)
    if table is None:
        table = _FIELDS[definition] = {}
    return table


def _field(table: dict[str, _Field], definition: str | None, name: str) -> _Field:
    f = table.get(name)
    if f is None:
        f = _Field(definition, name)
        if len(table) < _FIELDS_PER_DEFINITION:
            table[name] = f
    return f


_SELECTOR_KEYS = frozenset({"matchLabels", "matchExpressions"})


def _walk(value: Any, definition: str | None, path: Path, out: dict[Path, Any], whole: bool) -> None:
    """Record every owned path of `value` in `out` (path → the value there, compared by `_differs`; _NODE
    for nodes that are never "modified"). With `whole`, maps record themselves too (what a comparison
    reports for a map that appeared); an apply's set omits them."""
    if not isinstance(value, dict):
        return
    table = _fields(definition)
    for name, child in value.items():
        if child is None:
            continue
        f = table.get(name) or _field(table, definition, name)
        p = path + f.suffix
        if isinstance(child, dict):
            if f.selector and child.keys() <= _SELECTOR_KEYS:  # atomic, as _atomic_struct
                out[p] = child
            elif whole and f.is_map:
                out[p] = _NODE  # a map is a member itself, empty or not
                _walk(child, f.fp.type, p, out, whole)
            elif child:
                _walk(child, f.fp.type, p, out, whole)
            else:
                out[p] = child
        elif isinstance(child, list) and child:
            keys = f.keys
            if keys is not None and _associative(keys, child):
                items = f.fp.items
                for element in child:
                    ep = (*p, _element_key(keys, element))
                    out[ep] = _NODE
                    _walk(element, items, ep, out, whole)
            elif f.set_list and not any(isinstance(e, dict | list) for e in child):
                for item in child:
                    out[(*p, ("v", _dumps(item)))] = _NODE
            else:
                out[p] = child
        else:
            out[p] = child


def _paths(value: Any, definition: str | None, whole: bool) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    _walk(value, definition, (), out, whole)
    for p in _IGNORED:
        out.pop(p, None)
    meta = value.get("metadata") if isinstance(value, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("managedFields"), dict):
        return {p: v for p, v in out.items() if p[:2] != _MANAGED_FIELDS}
    out.pop(_MANAGED_FIELDS, None)
    return out


_EXACT = (str, bool, int)  # leaf types whose == is JSON equality (str == str, 1 != True is not needed:
# both sides are then the same type)


def _differs(a: Any, b: Any) -> bool:
    """Whether two recorded values differ as JSON: == is too coarse (1 == 1.0 == True, 0.0 == -0.0)
    where the types differ or floats are involved, so those compare by canonical encoding."""
    if a != b:
        return True
    t = type(a)
    if t is type(b) and t in _EXACT:
        return False
    return _dumps(a) != _dumps(b)


def _same(a: Any, b: Any) -> bool:
    """Whether two values are the same JSON, to skip a subtree: == first (cheap, and false for most values
    that differ), then the encodings, as == is too coarse (1 == 1.0 == True). A false "differ" (keys in
    another order, a value orjson cannot encode) costs only a descent."""
    if a is b:
        return True
    if a != b:
        return False
    t = type(a)
    if t is type(b) and t in _EXACT:
        return True
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except TypeError:
        return False


class _Diff:
    """(added, modified, removed) between two objects as SMD's Compare of their whole field sets, found by
    descending only where the objects differ: most writes change a few fields of a larger object."""

    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: set[Path] = set()
        self.modified: set[Path] = set()
        self.removed: set[Path] = set()

    def struct(self, old: dict[str, Any], new: dict[str, Any], definition: str | None, path: Path) -> None:
        table = _fields(definition)
        for name, a in new.items():
            b = old.get(name)
            if a is None:
                if b is not None:  # a null is an absent field
                    self.field(table.get(name) or _field(table, definition, name), definition, b, None, path)
            elif b is None or not _same(a, b):
                self.field(table.get(name) or _field(table, definition, name), definition, b, a, path)
        for name in old.keys() - new.keys():
            b = old[name]
            if b is not None:
                self.field(table.get(name) or _field(table, definition, name), definition, b, None, path)

    def field(self, f: _Field, definition: str | None, b: Any, a: Any, path: Path) -> None:
        """Compare field `f` of `definition` below `path`, holding `b` before and `a` after (None: absent)."""
        if isinstance(a, dict) and isinstance(b, dict):
            if not (f.selector and (a.keys() <= _SELECTOR_KEYS or b.keys() <= _SELECTOR_KEYS)) \
                    and (f.is_map or (a and b)):  # a map node is in both and never "modified"
                self.struct(b, a, f.fp.type, path + f.suffix)
                return
        elif isinstance(a, list) and isinstance(b, list) and a and b and f.keys is not None \
                and self.associative(f, f.keys, b, a, path + f.suffix):
            return
        # Leaves, atomic values, sets, a node that changes kind: both sides' paths in full.
        name = f.element[1]
        before: dict[Path, Any] = {}
        after: dict[Path, Any] = {}
        if b is not None:
            _walk({name: b}, definition, path, before, True)
        if a is not None:
            _walk({name: a}, definition, path, after, True)
        if not before:
            self.added.update(after)
        elif not after:
            self.removed.update(before)
        else:
            self.walked(before, after)

    def associative(self, f: _Field, keys: Keys, b: list[Any], a: list[Any], p: Path) -> bool:
        """Compare two associative lists element by element; False (nothing done) unless both are
        associative with unique keys (duplicates merge their paths: compared in full instead)."""
        if len(a) == len(b):
            plain = _plain_keys(keys, a)
            if plain is not None and plain == _plain_keys(keys, b) and len(set(plain)) == len(plain):
                # The same keys in the same order (a status write): pair the elements by index.
                items = f.fp.items
                for e, old in zip(a, b, strict=True):
                    if not _same(e, old):
                        self.struct(old, e, items, (*p, _element_key(keys, e)))
                return True
        if not (_associative(keys, a) and _associative(keys, b)):
            return False
        before = {_element_key(keys, e): e for e in b}
        after = {_element_key(keys, e): e for e in a}
        if len(before) != len(b) or len(after) != len(a):
            return False
        items = f.fp.items
        for key, e in before.items():
            if key not in after:
                gone: dict[Path, Any] = {(*p, key): _NODE}
                _walk(e, items, (*p, key), gone, True)
                self.removed.update(gone)
        for key, e in after.items():
            old = before.get(key)
            if old is None:
                new: dict[Path, Any] = {(*p, key): _NODE}
                _walk(e, items, (*p, key), new, True)
                self.added.update(new)
            elif not _same(e, old):
                self.struct(old, e, items, (*p, key))
        return True

    def walked(self, before: dict[Path, Any], after: dict[Path, Any]) -> None:
        for p, v in after.items():
            if p not in before:
                self.added.add(p)
            elif v is not _NODE and _differs(v, before[p]):
                self.modified.add(p)
        self.removed.update(p for p in before if p not in after)


# The paths of recently created top-level subtrees by definition, field and JSON: objects made from one
# template (a ReplicaSet's pods) differ in metadata only, and encoding a spec costs a fraction of its walk.
_SUBTREES: dict[tuple[str | None, str, bytes], tuple[Path, ...]] = {}
_SUBTREES_MAX = 256
_SUBTREE_MAX_BYTES = 1 << 16  # larger subtrees (a big ConfigMap's data) are walked, not kept: the cache
# holds at most _SUBTREES_MAX times this of keys


def _created(obj: Any, definition: str | None) -> set[Path]:
    """set(_paths(obj, definition, True)): every path of a new object."""
    if not isinstance(obj, dict):
        return set()
    out: set[Path] = set()
    rest: dict[str, Any] = {}  # metadata and scalars: walked each time
    for name, child in obj.items():
        raw = None
        if name != "metadata" and isinstance(child, dict | list):
            try:
                raw = orjson.dumps(child)
            except TypeError:
                pass
        if raw is None:
            rest[name] = child
            continue
        key = (definition, name, raw)
        paths = _SUBTREES.get(key)
        if paths is None:
            walked: dict[Path, Any] = {}
            _walk({name: child}, definition, (), walked, True)
            paths = tuple(walked)
            if len(raw) <= _SUBTREE_MAX_BYTES:
                if len(_SUBTREES) >= _SUBTREES_MAX:
                    del _SUBTREES[next(iter(_SUBTREES))]
                _SUBTREES[key] = paths
        out.update(paths)
    walked = {}
    _walk(rest, definition, (), walked, True)
    out.update(walked)
    out -= _IGNORED
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("managedFields"), dict):
        return {p for p in out if p[:2] != _MANAGED_FIELDS}
    out.discard(_MANAGED_FIELDS)
    return out


def _plain_keys(keys: Keys, items: list[Any]) -> list[tuple[Any, ...]] | None:
    """The key values of each element when all are strings or ints (whose == and hashing are JSON
    equality, unlike 1 == 1.0 == True), else None."""
    out = []
    for e in items:
        if type(e) is not dict:
            return None
        values = tuple(e.get(k, default) for k, default in keys)
        for v in values:
            if type(v) is not str and type(v) is not int:
                return None
        out.append(values)
    return out


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    # Nothing below metadata.managedFields is ever owned (_paths drops it): not compared at all.
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _compare(old: Any, new: Any, definition: str | None) -> tuple[set[Path], set[Path], set[Path]]:
    """(added, modified, removed) between two objects, as SMD's Compare."""
    if not old:  # a create: everything is added (and {} has no paths)
        return _created(new, definition), set(), set()
    diff = _Diff()
    diff.struct(_without_managed_fields(old), _without_managed_fields(new), definition, ())
    return diff.added - _IGNORED, diff.modified - _IGNORED, diff.removed - _IGNORED


# --- FieldsV1 ---------------------------------------------------------------------------------------------

def fields_to_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a set of paths as a FieldsV1 object: members sorted by element (the order of the sorted
    paths), "." first where a member also has members below it."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for kind, text in path:
            key = kind + ":" + text
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            node = child
        node["."] = None
    return _tidy(root)


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    # A leaf is `{}`; "." stays only where a member also has members below it. Element kinds are one
    # letter, so sorting "kind:text" keys sorts as the (kind, text) elements do.
    marked = node.pop(".", False) is None
    if not node:
        return node
    children = {k: _tidy(node[k]) for k in sorted(node)}
    return {".": {}, **children} if marked else children


def fields_from_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    """Decode FieldsV1; raises ValueError on a malformed document."""
    out: set[Path] = set()
    _from_v1(fields, prefix, out)
    return out


def _from_v1(fields: Any, prefix: Path, out: set[Path]) -> bool:
    """Add the paths of `fields` (below `prefix`) to `out`. Returns whether `fields` is exactly what
    fields_to_v1 writes for them (members sorted, "." first and only above members, canonical keys), so
    an unchanged set can keep its document instead of being encoded again."""
    if not isinstance(fields, dict):
        raise ValueError("FieldsV1 must be an object")
    canonical = True
    if not fields and prefix:
        out.add(prefix)
    last = ""
    for key, child in fields.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            if last or not prefix or len(fields) == 1 or type(child) is not dict or child:
                canonical = False
            continue
        kind, sep, text = key.partition(":")
        if not sep or kind not in ("f", "k", "v", "i"):
            raise ValueError(f"unknown path element {key!r}")
        if kind in ("k", "v"):  # canonical JSON, so equal keys compare equal
            canon = _dumps(json.loads(text))
            if canon != text:
                canonical = False
                text = canon
        if key <= last:
            canonical = False
        last = key
        if not _from_v1(child, (*prefix, (kind, text)), out):
            canonical = False
    return canonical


def path_string(path: Path) -> str:
    """SMD's Path.String(): `.spec.containers[name="a"].image`, `[="x"]` for set values."""
    parts = []
    for kind, text in path:
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            parts.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in sorted(keys.items())) + "]")
        elif kind == "v":
            parts.append(f"[={text}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


# --- managedFields ----------------------------------------------------------------------------------------

class _Managed:
    def __init__(self) -> None:
        self.sets: dict[ManagerKey, set[Path]] = {}
        self.times: dict[ManagerKey, str] = {}
        # Entries decoded from canonical FieldsV1: the set as read, its document and that document's
        # encoding, written back as it was while the set is unchanged; copied (decoded from its encoding)
        # when it belongs to another object.
        self._read: dict[ManagerKey, tuple[frozenset[Path], dict[str, Any], bytes | None]] = {}
        self._copy_read = False

    @classmethod
    def decode(cls, entries: Any, borrowed: bool = False) -> _Managed:
        """Decode managedFields; `borrowed`: the entries belong to another object (the live one)."""
        managed = cls()
        managed._copy_read = borrowed
        if entries and not isinstance(entries, list):  # `managedFields: true` is bad input, not a crash
            raise ValueError("managedFields must be a list")
        for entry in entries or []:
            if not isinstance(entry, dict):
                raise ValueError("managedFields entries must be objects")
            key = (str(entry.get("manager", "")), str(entry.get("operation", "")),
                   str(entry.get("apiVersion", "")), str(entry.get("subresource", "")))
            if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
                raise ValueError(f"unsupported fieldsType {entry.get('fieldsType')!r}")
            fields = entry.get("fieldsV1") or {}
            read, canonical, raw = _decoded(fields)
            if key in managed.sets:
                managed.sets[key] = managed.sets[key] | read
                managed._read.pop(key, None)
            else:
                managed.sets[key] = set(read)
                if canonical:
                    managed._read[key] = (read, fields, raw)
            if entry.get("time"):
                managed.times[key] = str(entry["time"])
        return managed

    def _fields_v1(self, key: ManagerKey, paths: set[Path]) -> dict[str, Any]:
        read = self._read.get(key)
        if read is not None and read[0] == paths:
            if not self._copy_read:
                return read[1]
            return orjson.loads(read[2]) if read[2] is not None else _copy_fields(read[1])
        return _encoded(paths)

    def encode(self) -> list[dict[str, Any]]:
        entries = []
        for key, paths in self.sets.items():
            if not paths:
                continue
            manager, operation, api_version, subresource = key
            entry: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version}
            if key in self.times:
                entry["time"] = self.times[key]
            entry["fieldsType"] = "FieldsV1"
            entry["fieldsV1"] = self._fields_v1(key, paths)
            if subresource:
                entry["subresource"] = subresource
            entries.append(entry)
        # Kubernetes' order: by operation (Apply before Update), then time, manager, apiVersion, subresource.
        entries.sort(key=lambda e: (e["operation"], e.get("time", ""), e["manager"], e["apiVersion"],
                                    e.get("subresource", "")))
        return entries


def _copy_fields(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy_fields(v) for k, v in node.items()}


# Recently encoded sets: objects of one shape (a ReplicaSet's pods, repeated status writes) own the same
# paths, and a frozenset of a set reuses its element hashes, so a lookup is much cheaper than encoding.
# The document is kept as JSON: decoding it (in C) is the cheapest fresh copy.
_ENCODED: dict[frozenset[Path], bytes] = {}
_ENCODED_MAX = 256


def _encoded(paths: set[Path]) -> dict[str, Any]:
    """fields_to_v1(paths), from the cache when the same set was encoded recently (always a fresh copy:
    the cached document is never handed out)."""
    key = frozenset(paths)
    raw = _ENCODED.get(key)
    if raw is None:
        doc = fields_to_v1(key)
        if len(_ENCODED) >= _ENCODED_MAX:
            del _ENCODED[next(iter(_ENCODED))]
        _ENCODED[key] = orjson.dumps(doc)
        return doc
    return orjson.loads(raw)  # type: ignore[no-any-return]


# Recently decoded FieldsV1 documents, by their JSON: every write decodes each manager's entry of the live
# object, and most entries are as the last write of this (or a like) object left them.
_DECODED: dict[bytes, tuple[frozenset[Path], bool]] = {}
_DECODED_MAX = 512


def _decoded(fields: Any) -> tuple[frozenset[Path], bool, bytes | None]:
    """The paths of a FieldsV1 document, whether it is canonical (see _from_v1) and its JSON (None when
    orjson cannot encode it: such a document is decoded every time). Raises ValueError when malformed."""
    try:
        raw: bytes | None = orjson.dumps(fields)
    except TypeError:
        raw = None
    if raw is not None:
        hit = _DECODED.get(raw)
        if hit is not None:
            return hit[0], hit[1], raw
    paths: set[Path] = set()
    canonical = _from_v1(fields, (), paths)
    read = frozenset(paths)
    if raw is not None:
        if len(_DECODED) >= _DECODED_MAX:
            del _DECODED[next(iter(_DECODED))]
        _DECODED[raw] = (read, canonical)
    return read, canonical, raw


def _meta(obj: Any) -> dict[str, Any]:
    """obj.metadata as a dict ({} when absent or malformed: validation reports that, not this)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def _set_managed(obj: dict[str, Any], managed: _Managed) -> None:
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    obj["metadata"]["managedFields"] = managed.encode()


def _reset_requested(meta: dict[str, Any]) -> bool:
    mf = meta.get("managedFields")
    return isinstance(mf, list) and (mf == [] or mf == [{}])


def _decode_live_or_new(old: dict[str, Any] | None, new: dict[str, Any], subresource: str) -> _Managed:
    """decodeLiveOrNew: a subresource write keeps the live entries; `managedFields: []` resets; entries
    sent by the client replace the live ones; otherwise the live ones carry over."""
    live = _meta(old).get("managedFields")
    new_meta = _meta(new)
    try:
        if subresource:
            return _Managed.decode(live, borrowed=True)
        if _reset_requested(new_meta):
            return _Managed()
        sent = _Managed.decode(new_meta.get("managedFields"))
        if sent.sets:
            return sent
    except ValueError:
        pass
    try:
        return _Managed.decode(live, borrowed=True)
    except ValueError:
        return _Managed()


def _manager_label(key: ManagerKey) -> str:
    """printManager: `"name"`, `with subresource "status"`, `using apps/v1` for Update entries."""
    manager, operation, api_version, subresource = key
    text = json.dumps(manager)
    if subresource:
        text += f" with subresource {json.dumps(subresource)}"
    if operation == "Update":
        text += f" using {api_version}"
    return text


def _conflict_error(conflicts: dict[ManagerKey, set[Path]]) -> StatusError:
    flat = [(key, path) for key in sorted(conflicts, key=_manager_label)
            for path in sorted(conflicts[key], key=path_string)]
    causes = [Cause("FieldManagerConflict", f"conflict with {_manager_label(k)}", path_string(p))
              for k, p in flat]
    if len(flat) == 1:
        key, path = flat[0]
        message = f"Apply failed with 1 conflict: conflict with {_manager_label(key)}: {path_string(path)}"
    else:
        lines = []
        for key in sorted(conflicts, key=_manager_label):
            lines.append(f"conflicts with {_manager_label(key)}:")
            lines += [f"- {path_string(p)}" for p in sorted(conflicts[key], key=path_string)]
        message = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": [c.to_dict() for c in causes]})


def _take_from_others(managed: _Managed, me: ManagerKey, added: set[Path], modified: set[Path],
                      removed: set[Path], force: bool) -> None:
    """SMD's update(): others lose what this write changed (a conflict unless forced) and what it removed."""
    changed = added | modified
    conflicts = {key: paths & changed for key, paths in managed.sets.items() if key != me and paths & changed}
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for key in list(managed.sets):
        if key == me:
            continue
        managed.sets[key] = managed.sets[key] - changed - removed
        if not managed.sets[key]:
            del managed.sets[key]
            managed.times.pop(key, None)


# --- merging and pruning values -----------------------------------------------------------------------------

def _merge(live: Any, config: Any, definition: str | None) -> Any:
    """live.Merge(config): objects field by field, associative lists by key, sets by value, else replace."""
    if not isinstance(live, dict) or not isinstance(config, dict):
        return json_copy(config)
    out = dict(live)
    for name, value in config.items():
        if value is None:
            out.pop(name, None)
            continue
        fp = field_patch(definition, name)
        current = out.get(name)
        atomic = _atomic_struct(definition, name, value)
        if isinstance(value, dict) and isinstance(current, dict) and not atomic:
            out[name] = _merge(current, value, fp.type)
        elif isinstance(value, list) and isinstance(current, list) \
                and _associative(keys := _keys(definition, name, fp), value) and _associative(keys, current):
            assert keys is not None
            out[name] = _merge_ordered(current, value, functools.partial(_element_key, keys),
                                       functools.partial(_merge_item, fp.items))
        elif isinstance(value, list) and isinstance(current, list) and _set_list(fp, value) \
                and _set_list(fp, current):
            out[name] = _merge_ordered(current, value, _dumps, lambda lhs, rhs: json_copy(rhs))
        else:
            out[name] = json_copy(value)
    return out


def _merge_item(definition: str | None, live: Any, applied: Any) -> Any:
    return json_copy(applied) if live is None else _merge(live, applied, definition)


def _merge_ordered(lhs: list[Any], rhs: list[Any], key: Callable[[Any], Any],
                   merge: Callable[[Any, Any], Any]) -> list[Any]:
    """SMD's visitListItems order: walk live and applied items together; live-only items keep their place,
    applied items come in applied order, and shared items are merged where the applied order reaches them."""
    lhs_by = {key(e): e for e in lhs}
    rhs_by = {key(e): e for e in rhs}
    lhs_order = list(dict.fromkeys(key(e) for e in lhs))
    rhs_order = list(dict.fromkeys(key(e) for e in rhs))
    shared = [k for k in rhs_order if k in lhs_by]
    next_shared = shared.pop(0) if shared else None
    out: list[Any] = []
    li = ri = 0
    while li < len(lhs_order) or ri < len(rhs_order):
        if li < len(lhs_order) and ri < len(rhs_order):
            k = lhs_order[li]
            if k == rhs_order[ri]:
                out.append(merge(lhs_by[k], rhs_by[k]))
                li, ri = li + 1, ri + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if k in rhs_by and next_shared is not None and next_shared != k:
                li += 1  # a shared item, but not the one wanted now: the applied order places it
                continue
        if li < len(lhs_order) and lhs_order[li] not in rhs_by:
            out.append(json_copy(lhs_by[lhs_order[li]]))
            li += 1
            continue
        if ri < len(rhs_order):
            k = rhs_order[ri]
            out.append(merge(lhs_by.get(k), rhs_by[k]))
            ri += 1
            if next_shared is not None and next_shared == k:
                next_shared = shared.pop(0) if shared else None
        else:
            li += 1  # only shared items already emitted remain on the live side
    return out


def _remove(obj: Any, path: Path, definition: str | None) -> None:
    """Delete the node at `path` from `obj` in place, if present."""
    node, defn = obj, definition
    for i, (kind, text) in enumerate(path):
        last = i == len(path) - 1
        if kind == "f":
            if not isinstance(node, dict) or text not in node:
                return
            if last:
                del node[text]
                return
            fp = field_patch(defn, text)
            child = node[text]
            if isinstance(child, list):
                nxt_kind, nxt_text = path[i + 1]
                if nxt_kind == "v" and i + 1 == len(path) - 1:
                    node[text] = [v for v in child if _dumps(v) != nxt_text]
                    return
                keys = _keys(defn, text, fp)
                if nxt_kind == "k" and keys is not None:
                    matches = [e for e in child if _associative(keys, [e])
                               and _element_key(keys, e) == (nxt_kind, nxt_text)]
                    if not matches:
                        return
                    if i + 1 == len(path) - 1:
                        node[text] = [e for e in child if not any(e is m for m in matches)]
                        return
                    _remove(matches[0], path[i + 2:], fp.items)
                return
            node, defn = child, fp.type
        else:
            return


def _prune(obj: dict[str, Any], previous: set[Path], current: set[Path], managed: _Managed, me: ManagerKey,
           definition: str | None) -> None:
    """Remove what `me` applied last time, no longer applies, and nobody else owns (SMD's prune)."""
    owned = set(current)
    for key, paths in managed.sets.items():
        if key != me:
            owned |= paths
    doomed = previous - owned
    # Keep a node that still has an owned descendant (another manager's field inside a dropped element).
    doomed = {p for p in doomed if not any(o[:len(p)] == p and len(o) > len(p) for o in owned)}
    # Removing a node removes what is below it; remove only the topmost doomed nodes.
    for path in sorted(doomed, key=len):
        if not any(path[:n] in doomed for n in range(1, len(path))):
            _remove(obj, path, definition)


# --- the public operations ---------------------------------------------------------------------------------

def _ignored_top_level(info: ResourceInfo, subresource: str) -> set[str]:
    # The main resource does not own status where a status subresource exists, and the status
    # subresource owns nothing but status (and metadata).
    if subresource == "status":
        return {"spec"}
    return {"status"} if info.has_status else set()


def server_side_apply(info: ResourceInfo, live: dict[str, Any] | None, applied: dict[str, Any], manager: str,
                      force: bool, subresource: str = "") -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: create). Fields in `applied` are set
    and owned; fields this manager applied before and no longer applies are removed unless another
    manager owns them; conflicts with other managers raise 409 Conflict unless `force`."""
    if not manager:
        raise bad_request("PATCH requests with apply must specify a fieldManager")
    if not isinstance(applied, dict):
        raise bad_request("the applied configuration must be an object")
    if applied.get("metadata") is not None and not isinstance(applied["metadata"], dict):
        raise bad_request("metadata must be an object")
    if _meta(applied).get("managedFields"):
        raise bad_request("metadata.managedFields must be nil")
    definition = definition_for(info.group, info.kind)
    config = {k: v for k, v in applied.items() if k not in _ignored_top_level(info, subresource)}
    base: dict[str, Any] = json_copy(live) if live is not None else {}
    try:
        managed = _Managed.decode(_meta(base).get("managedFields"))
    except ValueError:
        managed = _Managed()
    if live is not None and not managed.sets:
        # Objects written before fields were tracked: the live fields belong to a placeholder manager.
        key = (BEFORE_FIRST_APPLY, "Update", info.api_version, "")
        managed.sets[key] = set(_paths(base, definition, True))

    me: ManagerKey = (manager, "Apply", info.api_version, subresource)
    previous = managed.sets.get(me, set())
    current = set(_paths(config, definition, False))
    result: dict[str, Any] = _merge(base, config, definition)
    managed.sets[me] = current
    _prune(result, previous, current, managed, me, definition)
    added, modified, removed = _compare(base, result, definition)
    _take_from_others(managed, me, added, modified, removed, force)
    if not managed.sets.get(me):
        managed.sets.pop(me, None)
    live_time = managed.times.get(me)
    if live is None or added or modified or removed or previous != current or live_time is None:
        managed.times[me] = now_rfc3339()
    _set_managed(result, managed)
    return result


def track_update(info: ResourceInfo, old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                 operation: str = "Update", subresource: str = "") -> None:
    """Record in new.metadata.managedFields what this non-apply write (create, update, patch) changed:
    `manager` takes those fields from everyone else, and loses nothing it owned that still exists."""
    definition = definition_for(info.group, info.kind)
    managed = _decode_live_or_new(old, new, subresource)
    me: ManagerKey = (manager, operation, info.api_version, subresource)
    skip = _ignored_top_level(info, subresource) if old is not None else set()
    before = {k: v for k, v in (old or {}).items() if k not in skip}
    after = {k: v for k, v in new.items() if k not in skip}
    added, modified, removed = _compare(before, after, definition)
    _take_from_others(managed, me, added, modified, removed, force=True)
    changed = added | modified
    mine = (managed.sets.get(me, set()) - removed) | changed
    if mine:
        managed.sets[me] = mine
        if changed or me not in managed.times:
            managed.times[me] = now_rfc3339()
    else:
        managed.sets.pop(me, None)
        managed.times.pop(me, None)
    _set_managed(new, managed)
