"""Strategic merge patch, as apimachinery's `strategicpatch` applies it on the server.

Maps merge key by key (null deletes); lists whose field has strategy `merge` merge element by element
(maps by the field's merge key, primitives as a set); every other list is replaced. Directives:

- `$patch: replace` in a map replaces the map; `$patch: delete` deletes it; in a merge list an element
  `{"$patch": "replace"}` replaces the list, `{"<key>": v, "$patch": "delete"}` deletes that element;
- `$retainKeys: [..]` drops the original's keys not listed (used for unions such as volume sources);
- `$deleteFromPrimitiveList/<field>: [..]` removes values from a primitive merge list;
- `$setElementOrder/<field>: [..]` gives the order of the merged list.

Element order follows Kubernetes: patch items in patch (or $setElementOrder) order, server-only items in
their live order, interleaved where both are known to the live list — new items come first.

Simplified: a key absent from the original takes the patch value with its directives and nulls removed
(Kubernetes keeps nested directives verbatim there, which is a known wart).
"""

from __future__ import annotations

from typing import Any

from pyk8s.api.jsoncopy import json_copy
from pyk8s.api.patch.meta import field_patch

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


class PatchError(ValueError):
    """A malformed strategic merge patch; `code` is the HTTP status Kubernetes answers with."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def _go_repr(value: Any) -> str:
    """Roughly Go's %v of a decoded JSON value, for messages that embed the offending map."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_repr(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_repr(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _no_merge_key(m: dict[str, Any], key: str) -> PatchError:
    return PatchError(f"map: {_go_repr(m)} does not contain declared merge key: {key}")


def _bad_patch_type(directive: Any, m: dict[str, Any]) -> PatchError:
    return PatchError(f"unknown patch type: {directive} in map: {_go_repr(m)}")


def strategic_merge(original: dict[str, Any], patch: dict[str, Any],
                    definition: str | None) -> dict[str, Any]:
    """The result of `patch` on `original` for objects of schema `definition` (None: no metadata, every
    list atomic). Neither input is mutated. Raises PatchError."""
    if not isinstance(patch, dict):
        raise PatchError("invalid JSON document")
    return _merge_map(json_copy(original), json_copy(patch), definition)


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any],
               definition: str | None) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            del patch[_DIRECTIVE]
            replaced: dict[str, Any] = _strip(patch, definition)
            return replaced
        if directive == "delete":
            return {}
        raise _bad_patch_type(directive, patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, definition)

    # Deletions from primitive lists first, so that a value both removed and re-added ends up present.
    for key in [k for k in patch if k.startswith(_DELETE_PRIMITIVE)]:
        values = patch.pop(key)
        target = key[len(_DELETE_PRIMITIVE):]
        if not target or not isinstance(values, list):
            raise PatchError("invalid patch format of primitive list")
        current = original.get(target)
        if isinstance(current, list):
            original[target] = [v for v in current if v not in values]

    for key, patch_value in patch.items():
        if key.startswith("$"):
            continue
        if patch_value is None:
            original.pop(key, None)
            continue
        fp = field_patch(definition, key)
        child = fp.type or fp.items
        if key not in original:
            original[key] = _fresh(patch_value, definition, key)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(patch_value, dict):
            original[key] = (_strip(patch_value, fp.type) if fp.strategy == "replace"
                             else _merge_map(current, patch_value, fp.type))
        elif isinstance(current, list) and isinstance(patch_value, list):
            if fp.merges:
                original[key] = _merge_list(current, patch_value, fp.merge_key, fp.items)
            else:
                original[key] = _strip(patch_value, child)
        else:  # the kinds differ: the patch value replaces
            original[key] = _strip(patch_value, child)
    return original


def _fresh(patch_value: Any, definition: str | None, key: str) -> Any:
    """A patch value for a key the original lacks: merged into an empty value, which drops directives
    and nulls (and `$patch: delete` elements of merge lists)."""
    fp = field_patch(definition, key)
    if isinstance(patch_value, dict):
        return _merge_map({}, patch_value, fp.type)
    if isinstance(patch_value, list) and fp.merges:
        return _merge_list([], patch_value, fp.merge_key, fp.items)
    return _strip(patch_value, fp.items)


def _strip(value: Any, definition: str | None) -> Any:
    """Remove directives and nulls from a value taken verbatim from the patch."""
    if isinstance(value, dict):
        return {k: _strip(v, field_patch(definition, k).type or field_patch(definition, k).items)
                for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v, definition) for v in value if not (isinstance(v, dict) and _DIRECTIVE in v)]
    return value


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
        raise PatchError("invalid patch format of retainKeys")
    keep = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_PRIMITIVE, _SET_ORDER)) or key == _DIRECTIVE:
            continue
        if key not in keep:
            raise PatchError("invalid patch format of retainKeys")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _apply_set_element_order(original: dict[str, Any], patch: dict[str, Any], definition: str | None) -> None:
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(key)
        target = key[len(_SET_ORDER):]
        if not target or not isinstance(order, list):
            raise PatchError("invalid patch format of setElementOrder list")
        fp = field_patch(definition, target)
        live = original.get(target)
        patch_list = patch.get(target)
        if live is not None and not isinstance(live, list):
            raise PatchError("invalid patch format of setElementOrder list")
        if patch_list is not None and not isinstance(patch_list, list):
            raise PatchError("invalid patch format of setElementOrder list")
        if live is None and patch_list is None:
            continue
        if live is not None and patch_list is not None:
            merged = (_merge_list(live, patch_list, fp.merge_key, fp.items) if fp.merges
                      else _strip(patch_list, fp.items))
        elif patch_list is not None:
            merged = _fresh(patch_list, definition, target)
        else:
            merged = list(live or [])
        patch.pop(target, None)
        in_order, server_only = _partition(merged, order, fp.merge_key)
        original[target] = _normalize_order(in_order, server_only, order, list(live or []), fp.merge_key)


def _key_of(item: Any, merge_key: str | None) -> Any:
    if merge_key is None:
        return _hashable(item)
    if not isinstance(item, dict):
        raise PatchError(f"value for key {merge_key} is not a map.")
    if merge_key not in item:
        raise _no_merge_key(item, merge_key)
    return _hashable(item[merge_key])


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return repr(value)
    # JSON 1 and 1.0 are one number, but True is not 1.
    return (type(value) is bool, value)


def _merge_list(original: list[Any], patch: list[Any], merge_key: str | None,
                items: str | None) -> list[Any]:
    if not original and not patch:
        return original
    kinds = {type(v) is dict for v in [*original, *patch]}
    if any(isinstance(v, list) for v in [*original, *patch]):
        raise PatchError("lists of lists are not supported", 422)
    if len(kinds) > 1:
        raise PatchError("list element types are not identical")
    if kinds == {False}:
        merged = []
        seen: set[Any] = set()
        for v in [*original, *patch]:
            if _hashable(v) not in seen:
                seen.add(_hashable(v))
                merged.append(v)
        in_patch, server_only = _partition(merged, patch, None)
        return _normalize_order(in_patch, server_only, patch, original, None)
    if merge_key is None:
        raise PatchError("cannot merge lists without merge key")

    # Special elements: `$patch: delete` removes by key, `$patch: replace` replaces the whole list.
    plain: list[dict[str, Any]] = []
    replace = False
    for element in patch:
        if _DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in element:
                raise _no_merge_key(element, merge_key)
            doomed = _hashable(element[merge_key])
            original = [o for o in original if _key_of(o, merge_key) != doomed]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, element)
    if replace:
        original, plain = [_merge_map({}, e, items) for e in plain], []

    merged = list(original)
    for element in plain:
        key = _key_of(element, merge_key)
        for i, live in enumerate(merged):
            if _key_of(live, merge_key) == key:
                merged[i] = _merge_map(live, element, items)
                break
        else:
            merged.append(_merge_map({}, element, items))
    in_patch, server_only = _partition(merged, plain, merge_key)
    return _normalize_order(in_patch, server_only, plain, original, merge_key)


def _partition(merged: list[Any], by: list[Any], merge_key: str | None) -> tuple[list[Any], list[Any]]:
    wanted = set()
    for v in by:
        if merge_key is None:
            wanted.add(_hashable(v))
        elif isinstance(v, dict) and merge_key in v:
            wanted.add(_hashable(v[merge_key]))
    in_by = [v for v in merged if _key_of(v, merge_key) in wanted]
    others = [v for v in merged if _key_of(v, merge_key) not in wanted]
    return in_by, others


def _normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], merge_key: str | None) -> list[Any]:
    """normalizeElementOrder: each side sorted by its own order, then interleaved by live position; an
    item the live list does not know goes before the server-only item it is compared with."""

    def index_in(order: list[Any]) -> dict[Any, int]:
        out: dict[Any, int] = {}
        for i, v in enumerate(order):
            if merge_key is not None and not (isinstance(v, dict) and merge_key in v):
                continue
            out.setdefault(_key_of(v, merge_key), i)
        return out

    patch_index, server_index = index_in(patch_order), index_in(server_order)
    patch_items = sorted(patch_items, key=lambda v: patch_index.get(_key_of(v, merge_key), -1))
    server_only = sorted(server_only, key=lambda v: server_index.get(_key_of(v, merge_key), -1))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        else:
            li = server_index.get(_key_of(server_only[i], merge_key), -1)
            ri = server_index.get(_key_of(patch_items[j], merge_key), -1)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out
