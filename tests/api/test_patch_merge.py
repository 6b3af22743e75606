import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk8s.api.errors import StatusError
from pyk8s.api.patch import MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from pyk8s.api.patch.merge_patch import create_merge_patch, merge_patch
from pyk8s.api.resource import ResourceInfo

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)

# RFC 7386 appendix A test cases.
RFC_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_CASES)
def test_rfc7386_examples(target, patch, result):
    assert merge_patch(target, patch) == result


def test_apply_patch_merge_and_non_object_patch():
    live = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    assert apply_patch(CM, live, {"data": {"a": None, "c": "3"}}, MERGE_PATCH)["data"] == {"b": "2", "c": "3"}
    assert live["data"] == {"a": "1", "b": "2"}
    with pytest.raises(StatusError) as info:
        apply_patch(CM, live, ["x"], MERGE_PATCH)
    assert info.value.code == 400


_scalars = st.one_of(st.booleans(), st.integers(-5, 5), st.text("ab", max_size=2))
_docs = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text("abc", max_size=2), inner,
                                                                       max_size=3)), max_leaves=8)
_objects = st.dictionaries(st.text("abc", max_size=2), _docs, max_size=4)
_fast = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(_objects, _objects)
def test_diff_then_patch_gives_target(a, b):
    assert merge_patch(a, create_merge_patch(a, b)) == b


@_fast
@given(_objects, _objects)
def test_merge_patch_is_idempotent(a, p):
    once = merge_patch(a, p)
    assert merge_patch(once, p) == once


@_fast
@given(_objects)
def test_empty_patch_is_identity(a):
    assert merge_patch(a, {}) == a


_WIDGET = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)
_plain_keys = st.text("abc", min_size=1, max_size=2)  # no "$" directives
_plain_docs = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(_plain_keys, inner, max_size=3)),
                           max_leaves=8)
_plain_patches = st.dictionaries(_plain_keys, st.one_of(st.none(), _plain_docs), max_size=4)


@_fast
@given(st.dictionaries(_plain_keys, _plain_docs, max_size=4), _plain_patches)
def test_strategic_without_patch_metadata_is_merge_patch(a, p):
    """With no patch metadata (custom kinds) every list is atomic, so SMP reduces to RFC 7386."""
    assert apply_patch(_WIDGET, a, p, STRATEGIC_MERGE_PATCH) == merge_patch(a, p)
