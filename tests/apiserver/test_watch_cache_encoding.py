"""The watch cache's encoding of a stored value: the revision spliced into the bytes must decode to exactly
what decoding, setting resourceVersion and re-encoding gives, whatever the value's layout."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pyk8s.apiserver.watch_cache import _META_HEAD, decode, encode_with_revision
from pyk8s.store.protocol import KeyValue

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
keys = st.sampled_from(["apiVersion", "kind", "metadata", "spec", "status", "data", "resourceVersion"])
plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz/0123456789.", max_size=12)


def kv(obj: Any, rev: int) -> KeyValue:
    return KeyValue("/registry/x/ns/a", orjson.dumps(obj), rev, 1)


@given(st.dictionaries(keys, json_values | plain, max_size=5), st.dictionaries(keys, json_values, max_size=3),
       st.integers(1, 2**40))
def test_splice_decodes_as_the_round_trip(top: dict[str, Any], meta: dict[str, Any], rev: int) -> None:
    for obj in (top, {**top, "metadata": meta}, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, **top}):
        value = kv(obj, rev)
        if not isinstance(obj.get("metadata", {}), dict):
            continue
        assert orjson.loads(encode_with_revision(value)) == decode(value)


def test_the_head_is_only_the_top_levels_metadata() -> None:
    nested_first = {"spec": {"template": {"metadata": {"name": "inner"}}}, "metadata": {"name": "outer"}}
    assert _META_HEAD.match(orjson.dumps(nested_first)) is None  # not spliced into the template
    got = orjson.loads(encode_with_revision(kv(nested_first, 7)))
    assert got["metadata"] == {"name": "outer", "resourceVersion": "7"}
    assert got["spec"]["template"]["metadata"] == {"name": "inner"}

    tricky = {"apiVersion": 'a","metadata":{', "kind": "K", "metadata": {}}
    want = {**tricky, "metadata": {"resourceVersion": "9"}}
    assert orjson.loads(encode_with_revision(kv(tricky, 9))) == want

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}}
    assert encode_with_revision(kv(pod, 3)) == \
        b'{"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"3"},"spec":{}}'
