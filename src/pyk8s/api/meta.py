"""Object metadata rules: names, qualified names, label values, ObjectMeta validation, generated names.

Messages follow apimachinery's `util/validation` and `api/validation/objectmeta.go` word for word, because
kubectl users read them (`metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain …`).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.util.ids import random_string, random_uuid

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric character")
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_ERR = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                       "with an alphanumeric character")
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric characters, '-', "
                    "'_' or '.', and must start and end with an alphanumeric character")

# Go anchors these patterns with ^…$; fullmatch is the same test (no trailing-newline slip as with $).
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

# Owner kinds Kubernetes refuses (apimachinery's BannedOwners): events may not own anything.
_BANNED_OWNERS = {("v1", "Event"), ("events.k8s.io/v1", "Event")}
_FINALIZER_ORPHAN = "orphan"
_FINALIZER_FOREGROUND = "foregroundDeletion"


# --- the message helpers of apimachinery's util/validation ----------------------------------------

def empty_error() -> str:
    return "must be non-empty"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """`msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')` — the double space is Kubernetes'."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


# --- field errors, shaped as field.ErrorList renders them into Status causes ----------------------

def go_value(value: Any) -> str:
    """The bad value as field.Error prints it: null, strings quoted (%q), scalars bare, string slices
    and maps as Go's %#v, the rest as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "}"
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def field_invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}", path)


def field_required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", f"Required value: {detail}" if detail else "Required value", path)


def field_forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}" if detail else "Forbidden", path)


def field_too_long(path: str, max_bytes: int) -> Cause:
    return Cause("FieldValueTooLong", f"Too long: must have at most {max_bytes} bytes", path)


# --- names ----------------------------------------------------------------------------------------

def dns1123_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_label(value: str) -> bool:
    return not dns1123_label_errors(value)


def is_dns1123_subdomain(value: str) -> bool:
    return not dns1123_subdomain_errors(value)


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 alphanumerics with -_. inside."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + msg for msg in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if name and not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append("name part "
                    + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


# A name rule, as apimachinery's ValidateNameFunc: (name, is_generate_name_prefix) → messages.
NameRule = Callable[[str, bool], list[str]]


def _mask_trailing_dash(name: str) -> str:
    # A generateName prefix may end in '-': the random suffix follows it.
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return dns1123_subdomain_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return dns1123_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """ValidatePathSegmentName, for kinds whose names only need to be safe in a URL path (RBAC roles …)."""
    errs = [f"may not be '{name}'"] if not prefix and name in (".", "..") else []
    return errs + [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# --- labels and ObjectMeta ------------------------------------------------------------------------

def validate_labels(labels: Mapping[str, str] | None, path: str = "metadata.labels") -> list[Cause]:
    """ValidateLabels: each key a qualified name, each value a valid label value. As Kubernetes, the
    causes carry the map's path (not the key's) and the offending key or value."""
    causes: list[Cause] = []
    if not labels:
        return causes
    if not isinstance(labels, Mapping):
        return [field_invalid(path, labels, "must be a map of strings")]
    for key, value in labels.items():
        causes.extend(field_invalid(path, key, msg) for msg in qualified_name_errors(str(key)))
        if not isinstance(value, str):
            causes.append(field_invalid(path, value, "must be a string"))
            continue
        causes.extend(field_invalid(path, value, msg) for msg in label_value_errors(value))
    return causes


def validate_annotations(annotations: Mapping[str, str] | None,
                         path: str = "metadata.annotations") -> list[Cause]:
    causes: list[Cause] = []
    if not annotations:
        return causes
    if not isinstance(annotations, Mapping):
        return [field_invalid(path, annotations, "must be a map of strings")]
    total = 0
    for key, value in annotations.items():
        # Annotation keys are qualified names in which case does not matter.
        causes.extend(field_invalid(path, key, msg) for msg in qualified_name_errors(str(key).lower()))
        if not isinstance(value, str):
            causes.append(field_invalid(path, value, "must be a string"))
            continue
        total += len(key) + len(value)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES:
        causes.append(field_too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES))
    return causes


def validate_owner_references(refs: Any, path: str = "metadata.ownerReferences") -> list[Cause]:
    causes: list[Cause] = []
    if not refs:
        return causes
    if not isinstance(refs, list):
        return [field_invalid(path, refs, "must be a list")]
    first_controller = ""
    for ref in refs:
        if not isinstance(ref, dict):
            causes.append(field_invalid(path, ref, "must be an object"))
            continue
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            causes.append(field_invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            causes.append(field_invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            causes.append(field_invalid(f"{path}.name", ref.get("name", ""), "name must not be empty"))
        if not ref.get("uid"):
            causes.append(field_invalid(f"{path}.uid", ref.get("uid", ""), "uid must not be empty"))
        if (api_version, kind) in _BANNED_OWNERS:
            group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
            causes.append(field_invalid(path, ref, f"{group}/{version}, Kind={kind} is disallowed from being "
                                                   "an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name', '')}"
            if first_controller:
                causes.append(field_invalid(
                    path, refs, "Only one reference can have Controller set to true. "
                    f'Found "true" in references for {first_controller} and {current}'))
            else:
                first_controller = current
    return causes


def validate_finalizers(finalizers: Any, path: str = "metadata.finalizers") -> list[Cause]:
    causes: list[Cause] = []
    if not finalizers:
        return causes
    if not isinstance(finalizers, list):
        return [field_invalid(path, finalizers, "must be a list of strings")]
    for finalizer in finalizers:
        if not isinstance(finalizer, str):
            causes.append(field_invalid(path, finalizer, "must be a string"))
            continue
        causes.extend(field_invalid(path, finalizer, msg) for msg in qualified_name_errors(finalizer))
    if _FINALIZER_ORPHAN in finalizers and _FINALIZER_FOREGROUND in finalizers:
        causes.append(field_invalid(path, finalizers, f"finalizer {_FINALIZER_ORPHAN} and "
                                                      f"{_FINALIZER_FOREGROUND} cannot be both set"))
    return causes


def validate_object_meta(meta: Any, namespaced: bool, path: str = "metadata",
                         name_rule: NameRule = name_is_dns_subdomain) -> list[Cause]:
    """ValidateObjectMetaAccessor: name or generateName, namespace presence, generation, labels,
    annotations, ownerReferences, finalizers. `name_rule` is the kind's name rule (DNS subdomain for
    most kinds; `name_is_dns_label` for namespaces, services …)."""
    if not isinstance(meta, dict):
        return [field_required(f"{path}.name", "name or generateName is required")]
    causes: list[Cause] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        causes.extend(field_invalid(f"{path}.generateName", generate_name, msg)
                      for msg in name_rule(str(generate_name), True))
    name = meta.get("name") or ""
    if not name:
        causes.append(field_required(f"{path}.name", "name or generateName is required"))
    else:
        causes.extend(field_invalid(f"{path}.name", name, msg) for msg in name_rule(str(name), False))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            causes.append(field_required(f"{path}.namespace"))
        else:
            causes.extend(field_invalid(f"{path}.namespace", namespace, msg)
                          for msg in dns1123_label_errors(str(namespace)))
    elif namespace:
        causes.append(field_forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        causes.append(field_invalid(f"{path}.generation", generation, "must be greater than or equal to 0"))
    causes += validate_labels(meta.get("labels"), f"{path}.labels")
    causes += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    causes += validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    causes += validate_finalizers(meta.get("finalizers"), f"{path}.finalizers")
    return causes


# --- values the server fills in -------------------------------------------------------------------

# Kubernetes' utilrand alphabet: lowercase alphanumerics without vowels and look-alikes (no bad words, no
# 0/1/3 confusion).
_RANDOM_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATED_SUFFIX_LENGTH = 5


def generate_name(prefix: str) -> str:
    """generateName + 5 random characters; a long prefix is cut so the name stays ≤ 63 as Kubernetes
    does (maxGeneratedNameLength = 63 - 5)."""
    prefix = prefix[: DNS1123_LABEL_MAX_LENGTH - _GENERATED_SUFFIX_LENGTH]
    suffix = random_string(_GENERATED_SUFFIX_LENGTH, _RANDOM_ALPHABET)
    return prefix + suffix


def rfc3339(timestamp: float) -> str:
    """metav1.Time on the wire for a Unix time: UTC, second precision, `Z` suffix."""
    return _rfc3339_second(int(timestamp))


@functools.lru_cache(maxsize=4096)
def _rfc3339_second(second: int) -> str:
    # Formatting costs ~3 µs, a cached second ~0.2 µs (measured); writes, statuses and events stamp the
    # same few seconds over and over.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(timestamp: float) -> str:
    """metav1.MicroTime on the wire (Lease times, audit stages): UTC, microseconds, `Z` suffix."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339(offset_seconds: int = 0) -> str:
    """rfc3339 of now plus `offset_seconds`."""
    return _rfc3339_second(int(time.time()) + offset_seconds)


def new_uid() -> str:
    return random_uuid()
