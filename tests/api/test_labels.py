import json
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk8s.api.errors import StatusError
from pyk8s.api.labels import (
    NOTHING,
    Operator,
    Requirement,
    Selector,
    parse_selector,
    selector_from_label_selector,
    selector_from_set,
)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"a": "b"}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("x in (foo,,baz),y,z notin ()", {"x": "", "y": "1"}, True),
        ("x in (foo,,baz),y,z notin ()", {"x": "", "y": "1", "z": ""}, False),
        ("x notin (a)", {}, True),
        ("!x", {"x": "1"}, False),
        ("x", {"x": ""}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "2"}, False),
        ("x>1", {"x": "abc"}, False),
        ("value in (in)", {"value": "in"}, True),
        ("  a = b ,  c  ", {"a": "b", "c": "x"}, True),
        ("example.com/app=web", {"example.com/app": "web"}, True),
    ],
)
def test_matches_as_kubernetes(text, labels, expected):
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ],
)
def test_parse_errors_are_400_with_kubernetes_message(text, message):
    with pytest.raises(StatusError) as info:
        parse_selector(text)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


def test_invalid_key_and_value_messages():
    with pytest.raises(StatusError) as info:
        parse_selector("-a=b")
    prefix = 'unable to parse requirement: <nil>: Invalid value: "-a": name part '
    assert info.value.message.startswith(prefix)
    with pytest.raises(StatusError) as info:
        parse_selector("k=" + "v" * 64)
    assert info.value.message.startswith("unable to parse requirement: values[0][k]: Invalid value:")


def test_string_form_is_sorted_and_normalised():
    assert str(parse_selector("z=1,a in (y,x),!b")) == "a in (x,y),!b,z=1"
    assert parse_selector("").empty and not parse_selector("a").empty


def test_object_form_nil_matches_nothing_empty_matches_everything():
    assert selector_from_label_selector(None) is NOTHING
    assert not NOTHING.matches({}) and not NOTHING.empty
    assert selector_from_label_selector({}).matches({"any": "thing"})
    assert selector_from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty
    sel = selector_from_label_selector({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "track", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    })
    assert sel.matches({"app": "web", "tier": "fe", "track": "x"})
    assert not sel.matches({"app": "web", "tier": "fe", "track": "x", "legacy": "1"})
    assert not sel.matches({"app": "web", "tier": "fe", "track": "x", "env": "prod"})
    assert not sel.matches({"app": "web", "tier": "xx", "track": "x"})
    assert sel.requires_exact_match("app") == "web"


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]},
         '"Bogus" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
         "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
         "values: Invalid value: [x]: values set must be empty for exists and does not exist"),
    ],
)
def test_object_form_errors(selector, message):
    with pytest.raises(StatusError) as info:
        selector_from_label_selector(selector)
    assert info.value.code == 400 and info.value.message == message


def test_selector_from_set():
    assert selector_from_set(None).empty
    assert str(selector_from_set({"b": "2", "a": "1"})) == "a=1,b=2"


_ALNUM = "abcxyz019"
_names = st.builds(lambda a, mid, b: a + mid + b, st.sampled_from(_ALNUM),
                   st.text("ab-_.9", max_size=4), st.sampled_from(_ALNUM))
_values = st.one_of(st.just(""), _names)


@st.composite
def _requirements(draw):
    key = draw(_names)
    op = draw(st.sampled_from(list(Operator)))
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        values: tuple[str, ...] = ()
    elif op in (Operator.IN, Operator.NOT_IN):
        values = tuple(sorted(set(draw(st.lists(_values, min_size=1, max_size=4)))))
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        values = (str(draw(st.integers(0, 10**6))),)
    else:
        values = (draw(_values),)
    return Requirement(key, op, values)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_requirements(), max_size=5))
def test_print_parse_round_trip(reqs):
    sel = Selector(tuple(sorted(reqs, key=lambda r: r.key)))
    assert parse_selector(str(sel)) == sel


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_requirements(), max_size=5), st.dictionaries(_names, _values, max_size=5))
def test_reparsed_selector_matches_the_same(reqs, labels):
    sel = Selector(tuple(sorted(reqs, key=lambda r: r.key)))
    assert parse_selector(str(sel)).matches(labels) == all(r.matches(labels) for r in reqs)


_KUBECTL_BAD_SELECTORS = ["a b", "a=b c", "x in (a", "!a=b", "-a=b", "a/b/c=d", "k=" + "v" * 64, "a=b,", "=a",
                          "x in a", "a=(", "a in (b,c", "Bad_/x", "a>b", "a notin ()x"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH")
@pytest.mark.parametrize("text", _KUBECTL_BAD_SELECTORS)
def test_parse_errors_match_kubectl(text, tmp_path):
    """kubectl's `set selector --local` runs apimachinery's labels.Parse on our behalf."""
    svc = tmp_path / "svc.json"
    svc.write_text(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}))
    proc = subprocess.run(["kubectl", "set", "selector", "--local", "-f", str(svc), "-o", "json", "--", text],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    with pytest.raises(StatusError) as info:
        parse_selector(text)
    assert proc.stderr.strip() == f'error: couldn\'t parse the selector string "{text}": {info.value.message}'


def test_gt_lt_parse_integers_as_go():
    assert not parse_selector("x>1").matches({"x": "1_0"})
    assert not parse_selector("x>1").matches({"x": " 5"})
    assert parse_selector("x>0").matches({"x": "+2"})
    with pytest.raises(StatusError):
        parse_selector("x>1_0")
