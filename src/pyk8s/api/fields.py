"""Field selectors (apimachinery `fields`): `?fieldSelector=metadata.name=web,status.phase!=Failed`.

Only `=`, `==` and `!=` exist; terms are comma-joined; in a value `\\`, `,` and `=` are escaped with a
backslash. A missing field reads as "" (so `spec.nodeName=` selects unscheduled pods).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyk8s.api.errors import bad_request


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!=" ("==" is read as "=")
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal, if a term pins it (lets the server narrow a list by name)."""
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def check_supported(self, extra: tuple[str, ...] = ()) -> None:
        """Raise Kubernetes' 400 for a field the kind cannot select on: metadata.name, metadata.namespace
        and `extra` (ResourceInfo.field_selectors) are supported."""
        for r in self.requirements:
            if r.field not in ("metadata.name", "metadata.namespace") and r.field not in extra:
                raise bad_request(f"field label not supported: {r.field}")


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(value: str) -> str:
    """fields.UnescapeValue; raises ValueError with Kubernetes' message on a bad escape."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Go prints the rune with %v, i.e. as its code point.
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash (the backslash stays for unescape_value)."""
    terms: list[str] = []
    start, in_slash = 0, False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    # The field name has no escaping: the first operator found splits the term; "!=" and "==" before "=".
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector. A bad selector is a 400 with Kubernetes' message. Whether each field is
    supported for the kind is the server's check (`field label not supported: X`)."""
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)) if text else []:
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = split
        try:
            value = unescape_value(raw)
        except ValueError as e:
            raise bad_request(str(e)) from None
        requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(requirements))


def _lookup(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _as_field_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """One selectable field of `obj` (dotted path) as a string; "" when absent."""
    return _as_field_string(_lookup(obj, path))
