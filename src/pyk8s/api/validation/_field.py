"""Field errors and the value rules of apimachinery's util/validation, shaped as Kubernetes renders them.

A Cause's message is field.Error.ErrorBody(): `Required value`, `Invalid value: "x": detail`,
`Unsupported value: "x": supported values: "a", "b"`, … The bad value prints as Go prints it (%q for
strings, bare numbers and booleans, `[]string{"a"}` for string lists).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any, TypeGuard

from pyk8s.api.errors import Cause
from pyk8s.api.meta import (
    dns1123_label_errors as dns1123_label,
)
from pyk8s.api.meta import (
    dns1123_subdomain_errors as dns1123_subdomain,
)
from pyk8s.api.meta import (
    go_value,
    max_len_error,
    regex_error,
    validate_labels,
)
from pyk8s.api.meta import (
    label_value_errors as label_value,
)
from pyk8s.api.meta import (
    qualified_name_errors as qualified_name,
)

__all__ = [
    "dns1123_label",
    "dns1123_subdomain",
    "go_value",
    "label_value",
    "max_len_error",
    "qualified_name",
    "regex_error",
    "validate_labels",
]

Obj = dict[str, Any]


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", _with_detail("Required value", detail), path)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause("FieldValueInvalid", _with_detail(f"Invalid value: {go_value(value)}", detail), path)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    quoted = ", ".join(json.dumps(v) for v in supported)
    detail = f"supported values: {quoted}" if quoted else ""
    body = f"Unsupported value: {go_value(value)}"
    return Cause("FieldValueNotSupported", _with_detail(body, detail), path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", f"Duplicate value: {go_value(value)}", path)


def not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", f"Not found: {go_value(value)}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", _with_detail("Forbidden", detail), path)


def too_long(path: str, max_bytes: int) -> Cause:
    return Cause("FieldValueTooLong", f"Too long: must have at most {max_bytes} bytes", path)


def too_many(path: str, actual: int, maximum: int) -> Cause:
    return Cause("FieldValueTooMany", f"Too many: {actual}: must have at most {maximum} items", path)


IMMUTABLE = "field is immutable"


def immutable(path: str, new: Any, old: Any) -> list[Cause]:
    """ValidateImmutableField: the new value, when it differs from the old."""
    return [] if new == old else [invalid(path, new, IMMUTABLE)]


# --- typed access: manifests are user input, so a wrong JSON type is a cause, never a crash -------


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def type_check(path: str, value: Any, kind: type | tuple[type, ...], what: str) -> list[Cause]:
    """A present value of the wrong JSON type; Kubernetes' decoder refuses those too."""
    if value is None or (isinstance(value, kind) and not (isinstance(value, bool) and kind is int)):
        return []
    return [Cause("FieldValueTypeInvalid", f"Invalid value: {go_value(value)}: must be {what}", path)]


# --- message helpers of util/validation -----------------------------------------------------------


INCLUSIVE_RANGE_PORT = "must be between 1 and 65535, inclusive"
NON_NEGATIVE = "must be greater than or equal to 0"

_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_ERR = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_RE = {fmt: re.compile(fmt) for fmt in (_DNS1035_FMT, _CONFIG_KEY_FMT)}


def dns1035_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _RE[_DNS1035_FMT].fullmatch(value):
        errs.append(regex_error(_DNS1035_ERR, _DNS1035_FMT, "my-name", "abc-123"))
    return errs


def config_map_key(value: str) -> list[str]:
    errs = [max_len_error(253)] if len(value) > 253 else []
    if not _RE[_CONFIG_KEY_FMT].fullmatch(value):
        errs.append(regex_error(_CONFIG_KEY_ERR, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def relaxed_env_var_name(value: str) -> list[str]:
    """IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation, on by default since 1.32)."""
    errs = []
    if not value or any(not (32 <= ord(c) <= 126) or c == "=" for c in value):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
        )
    return errs


def port_name(value: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME."""
    errs = []
    if len(value) > 15:
        errs.append(max_len_error(15))
    if not re.fullmatch("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number(value: Any) -> list[str]:
    return [] if is_int(value) and 1 <= value <= 65535 else [INCLUSIVE_RANGE_PORT]


def ip_address(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def cidr(value: str) -> list[str]:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    return [] if "/" in value else ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]


def path_segment_name(value: str) -> list[str]:
    """ValidatePathSegmentName: names that become one URL path segment (RBAC roles, …)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def check(path: str, value: str, rule: Any) -> list[Cause]:
    """Every message of a name rule as an Invalid cause at `path`."""
    return [invalid(path, value, msg) for msg in rule(value)]


def unique_label_name(path: str, name: Any, names: set[str]) -> list[Cause]:
    """A list item's required DNS-1123 label name that no earlier item has (`names`, which it joins)."""
    if not name:
        return [required(path, "")]
    causes = check(path, key(name), dns1123_label)
    if key(name) in names:
        causes.append(duplicate(path, name))
    names.add(key(name))
    return causes


def non_negative(path: str, value: Any) -> list[Cause]:
    if value is None:
        return []
    if not is_int(value):
        return type_check(path, value, int, "an integer")
    return [invalid(path, value, NON_NEGATIVE)] if value < 0 else []


def positive(path: str, value: Any) -> list[Cause]:
    if value is None:
        return []
    if not is_int(value):
        return type_check(path, value, int, "an integer")
    return [invalid(path, value, "must be greater than 0")] if value <= 0 else []


def one_of(
    path: str, value: Any, supported: Iterable[str], *, required_when_empty: bool = True
) -> list[Cause]:
    """An enum field: Required when empty, Unsupported when unknown."""
    values = list(supported)
    if value in (None, ""):
        return [required(path, "")] if required_when_empty else []
    return [] if value in values else [not_supported(path, value, values)]


def invalid_shown(path: str, shown: str, detail: str = "") -> Cause:
    """Invalid with the bad value already rendered (a fmt.Stringer such as IntOrString prints bare)."""
    return Cause("FieldValueInvalid", _with_detail(f"Invalid value: {shown}", detail), path)


def key(value: Any) -> str:
    """A hashable text for a value used as a name or key: user input may be any JSON type."""
    return value if isinstance(value, str) else go_value(value)
