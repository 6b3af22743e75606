import re
import time

from pyk8s.api.meta import (
    generate_name,
    go_value,
    is_dns1123_label,
    is_dns1123_subdomain,
    name_is_dns_label,
    new_uid,
    now_rfc3339,
    qualified_name_errors,
    rfc3339,
    rfc3339_micro,
    validate_annotations,
    validate_labels,
    validate_object_meta,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def test_dns_names():
    assert is_dns1123_label("my-name") and is_dns1123_label("123-abc")
    assert not is_dns1123_label("My-name") and not is_dns1123_label("a.b") and not is_dns1123_label("-a")
    assert not is_dns1123_label("a" * 64)
    assert is_dns1123_subdomain("example.com") and is_dns1123_subdomain("a" * 253)
    assert not is_dns1123_subdomain("a" * 254) and not is_dns1123_subdomain("a..b")
    assert not is_dns1123_subdomain("a\n")


def test_qualified_names_as_kubernetes():
    assert qualified_name_errors("example.com/MyName") == []
    assert qualified_name_errors("my.name") == []
    assert qualified_name_errors("/a") == ["prefix part must be non-empty"]
    assert qualified_name_errors("a/") == ["name part must be non-empty"]
    assert qualified_name_errors("x" * 64) == ["name part must be no more than 63 characters"]
    assert qualified_name_errors("a/b/c")[0].startswith("a qualified name must consist of")
    assert qualified_name_errors("Bad_/x")[0].startswith("prefix part a lowercase RFC 1123 subdomain")


def test_object_meta_name_message_matches_kubernetes():
    causes = validate_object_meta({"name": "Foo", "namespace": "default"}, namespaced=True)
    assert [(c.type, c.field, c.message) for c in causes] == [
        ("FieldValueInvalid", "metadata.name", f'Invalid value: "Foo": {SUBDOMAIN_MSG}')
    ]


def test_object_meta_name_or_generate_name_and_namespace():
    causes = validate_object_meta({}, namespaced=True)
    assert [(c.field, c.message) for c in causes] == [
        ("metadata.name", "Required value: name or generateName is required"),
        ("metadata.namespace", "Required value"),
    ]
    assert validate_object_meta({"generateName": "web-", "name": "web-abcde", "namespace": "ns"}, True) == []
    causes = validate_object_meta({"name": "n", "namespace": "ns"}, namespaced=False)
    assert [(c.type, c.field, c.message) for c in causes] == [
        ("FieldValueForbidden", "metadata.namespace", "Forbidden: not allowed on this type")
    ]
    # Namespaces and services use the stricter DNS label rule.
    causes = validate_object_meta({"name": "a.b"}, namespaced=False, name_rule=name_is_dns_label)
    assert causes and causes[0].field == "metadata.name"


def test_labels_and_values():
    assert validate_labels({"app": "web", "example.com/tier": "", "a": "A.b-c_1"}) == []
    causes = validate_labels({"app": "-bad"}, "spec.template.metadata.labels")
    assert len(causes) == 1
    assert causes[0].field == "spec.template.metadata.labels"
    assert causes[0].message.startswith('Invalid value: "-bad": a valid label must be an empty string')
    causes = validate_labels({"app": "x" * 64})
    assert causes[0].message == f'Invalid value: "{"x" * 64}": must be no more than 63 characters'


def test_annotations_total_size():
    assert validate_annotations({"Example.COM/Key": "v"}) == []  # case does not matter in keys
    causes = validate_annotations({"a": "x" * (256 * 1024)})
    assert [(c.type, c.message) for c in causes] == [
        ("FieldValueTooLong", "Too long: must have at most 262144 bytes")
    ]


def test_owner_references_and_finalizers():
    meta = {
        "name": "a",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "1", "controller": True},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "s", "uid": "2", "controller": True},
            {"apiVersion": "", "kind": "", "name": "", "uid": ""},
        ],
        "finalizers": ["orphan", "foregroundDeletion", "bad finalizer"],
    }
    fields = [(c.field, c.message.rsplit(": ", 1)[-1]) for c in validate_object_meta(meta, False)]
    assert ("metadata.ownerReferences.apiVersion", "version must not be empty") in fields
    assert ("metadata.ownerReferences.kind", "kind must not be empty") in fields
    assert ("metadata.ownerReferences.name", "name must not be empty") in fields
    assert ("metadata.ownerReferences.uid", "uid must not be empty") in fields
    assert any(f == "metadata.ownerReferences" and "ReplicaSet/r and ReplicaSet/s" in m for f, m in fields)
    assert ("metadata.finalizers", "finalizer orphan and foregroundDeletion cannot be both set") in fields
    assert sum(1 for f, _ in fields if f == "metadata.finalizers") == 2


def test_generated_values():
    name = generate_name("web-")
    assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    assert len(generate_name("x" * 100)) == 63
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now_rfc3339())
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", new_uid())
    assert new_uid() != new_uid()


def test_times_on_the_wire():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000.999) == "2023-11-14T22:13:20Z"  # seconds, truncated
    now = time.time()
    stamped = [now_rfc3339(), now_rfc3339(90)]
    assert stamped[0] in (rfc3339(now), rfc3339(now + 1))
    assert stamped[1] in (rfc3339(now + 90), rfc3339(now + 91))
    assert rfc3339_micro(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"  # MicroTime: Leases, audit


def test_field_error_values_print_as_go_does() -> None:
    """field.Error shows the bad value with %#v: a []string as Go spells it, strings quoted, null."""
    meta = {"name": "x", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]}
    messages = [c.message for c in validate_object_meta(meta, True) if c.field == "metadata.finalizers"]
    assert messages == ['Invalid value: []string{"orphan", "foregroundDeletion"}: '
                        "finalizer orphan and foregroundDeletion cannot be both set"]
    assert go_value(None) == "null" and go_value("a b") == '"a b"' and go_value(3) == "3"
    assert go_value({"k": "v"}) == 'map[string]string{"k":"v"}'
