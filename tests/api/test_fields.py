import pytest

from pyk8s.api.errors import StatusError
from pyk8s.api.fields import escape_value, field_value, parse_field_selector

POD = {"metadata": {"name": "web-0", "namespace": "default"}, "spec": {"nodeName": "n1", "hostNetwork": True},
       "status": {"phase": "Running"}}


def test_operators_and_matching():
    names = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.hostNetwork",
             "status.podIP")
    fields = {name: field_value(POD, name) for name in names}
    assert fields == {"metadata.name": "web-0", "metadata.namespace": "default", "spec.nodeName": "n1",
                      "status.phase": "Running", "spec.hostNetwork": "true", "status.podIP": ""}
    assert parse_field_selector("metadata.name=web-0").matches(fields)
    assert parse_field_selector("metadata.name==web-0,status.phase!=Pending").matches(fields)
    assert not parse_field_selector("status.phase!=Running").matches(fields)
    # An absent field reads as "": `spec.nodeName=` selects unscheduled pods.
    assert parse_field_selector("spec.nodeName=").matches({"spec.nodeName": ""})
    assert parse_field_selector("").empty


def test_requirements_expose_fields_for_the_server():
    sel = parse_field_selector("status.phase=Running,metadata.name!=x")
    assert [(r.field, r.operator, r.value) for r in sel.requirements] == [
        ("metadata.name", "!=", "x"), ("status.phase", "=", "Running")]
    assert sel.requires_exact_match("status.phase") == "Running"
    assert sel.requires_exact_match("metadata.name") is None


def test_escaping_round_trip():
    value = "a,b=c\\d"
    text = "metadata.name=" + escape_value(value)
    assert text == "metadata.name=a\\,b\\=c\\\\d"
    sel = parse_field_selector(text)
    assert sel.requirements[0].value == value
    assert str(sel) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ],
)
def test_bad_selectors_are_400(text, message):
    with pytest.raises(StatusError) as info:
        parse_field_selector(text)
    assert (info.value.code, info.value.message) == (400, message)


def test_unsupported_field_is_400_with_kubernetes_message():
    parse_field_selector("metadata.name=a,spec.nodeName=n").check_supported(("spec.nodeName",))
    with pytest.raises(StatusError) as info:
        parse_field_selector("metadata.name=a,spec.bogus=x").check_supported(("spec.nodeName",))
    assert (info.value.code, info.value.message) == (400, "field label not supported: spec.bogus")
