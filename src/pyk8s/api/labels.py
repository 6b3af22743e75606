"""Label selectors, as apimachinery's `labels` package: the string form of `?labelSelector=` and the
object form of `spec.selector` (matchLabels / matchExpressions).

Label key and value validation lives in `pyk8s.api.meta` (`validate_labels`); it is re-exported here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyk8s.api.errors import bad_request
from pyk8s.api.meta import label_value_errors, qualified_name_errors, validate_labels

__all__ = ["NOTHING", "Operator", "Requirement", "Selector", "parse_selector", "selector_from_label_selector",
           "selector_from_set", "validate_labels"]


class Operator(enum.StrEnum):
    """selection.Operator; the values are Kubernetes' spellings (used in its error messages)."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER_THAN = "gt"
    LESS_THAN = "lt"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")
_INT = re.compile(r"[+-]?[0-9]+")


def _parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): no spaces or underscores, which Python's int() accepts."""
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()  # sorted and unique, as Kubernetes' sets.String

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: both sides must be integers, else no match.
        if self.key not in labels or len(self.values) != 1:
            return False
        have, want = _parse_int(labels[self.key]), _parse_int(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(self.values)
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True, slots=True)
class Selector:
    """An AND of requirements, sorted by key. `nothing` is the selector that matches no object (a nil
    LabelSelector); the empty selector matches every object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (Kubernetes' Selector.Empty)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value `key` must have, if the selector pins it (lets callers index by label)."""
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                if exact and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


NOTHING = Selector(nothing=True)


def _requirement(key: str, op: Operator, values: list[str] | set[str]) -> Requirement:
    """NewRequirement: validates the key, the number of values and each value; raises ValueError with
    Kubernetes' aggregated message."""
    errs: list[str] = []

    def invalid(path: str, value: Any, detail: str) -> None:
        shown = f'"{value}"' if isinstance(value, str) else "[" + " ".join(map(str, value)) + "]"
        errs.append(f"{path}: Invalid value: {shown}: {detail}")

    key_path, values_path = "key", "values"
    key_errs = qualified_name_errors(key)
    if key_errs:
        invalid(key_path, key, "; ".join(key_errs))
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        invalid(values_path, list(values), "for 'in', 'notin' operators, values set can't be empty")
    elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        invalid(values_path, list(values), "exact-match compatibility requires one single value")
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        invalid(values_path, list(values), "values set must be empty for exists and does not exist")
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            invalid(values_path, list(values), "for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(sorted(values)):
            if _parse_int(v) is None:
                invalid(f"{values_path}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")
    for i, v in enumerate(sorted(values)):
        value_errs = label_value_errors(v)
        if value_errs:
            invalid(f"{values_path}[{i}][{key}]", v, "; ".join(value_errs))
    if errs:
        raise ValueError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, op, tuple(sorted(set(values))))


# --- the string form ------------------------------------------------------------------------------

_SPECIAL = "=!(),><"
_WHITESPACE = " \t\r\n"
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<", "!=": "!=", "(": "("}
_KEYWORDS = {"in", "notin"}
_IDENT = "ident"
_END = "end"
_ERROR = "error"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal): kind is a symbol, 'in'/'notin', _IDENT, _ERROR or _END."""
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            tokens.append((_END, ""))
            return tokens
        if text[pos] in _SPECIAL:
            # Longest run of special characters that still forms a known symbol.
            buffer, last = "", ""
            while pos < n and text[pos] in _SPECIAL:
                buffer += text[pos]
                if buffer in _SYMBOLS:
                    last = buffer
                    pos += 1
                elif last:
                    break
                else:
                    pos += 1
            tokens.append((last, last) if last else (_ERROR, f"error expected: keyword found '{buffer}'"))
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        tokens.append((word, word) if word in _KEYWORDS else (_IDENT, word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _kind(self, values: bool, token: tuple[str, str]) -> str:
        # In a value position 'in' and 'notin' are plain identifiers ("x in (in)").
        return _IDENT if values and token[0] in _KEYWORDS else token[0]

    def peek(self, values: bool = True) -> tuple[str, str]:
        token = self.tokens[self.pos]
        return self._kind(values, token), token[1]

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return self._kind(values, token), token[1]

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind == _END:
                return requirements
            if kind not in (_IDENT, "!"):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except ValueError as e:
                raise ValueError(f"unable to parse requirement: {e}") from None
            kind, lit = self.take()
            if kind == _END:
                return requirements
            if kind != ",":
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            kind2, lit2 = self.peek()
            if kind2 not in (_IDENT, "!"):
                raise ValueError(f"found '{lit2}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        kind, key = self.take()
        negated = kind == "!"
        if negated:
            kind, key = self.take()
        if kind != _IDENT:
            raise ValueError(f"found '{key}', expected: identifier")
        key_errs = qualified_name_errors(key)
        if key_errs:
            raise ValueError(f'<nil>: Invalid value: "{key}": ' + "; ".join(key_errs))
        # "!a=b" ends the requirement after "!a"; the parse then fails on the "=".
        if negated:
            return _requirement(key, Operator.DOES_NOT_EXIST, [])
        if self.peek()[0] in (_END, ","):
            return _requirement(key, Operator.EXISTS, [])
        kind, lit = self.take(values=False)
        op = {"in": Operator.IN, "notin": Operator.NOT_IN, "=": Operator.EQUALS, "==": Operator.DOUBLE_EQUALS,
              "!=": Operator.NOT_EQUALS, ">": Operator.GREATER_THAN, "<": Operator.LESS_THAN}.get(kind)
        if op is None:
            raise ValueError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        values = self.set_values() if op in (Operator.IN, Operator.NOT_IN) else self.exact_value()
        return _requirement(key, op, values)

    def set_values(self) -> set[str]:
        kind, lit = self.take()
        if kind != "(":
            raise ValueError(f"found '{lit}' expected: '('")
        kind, lit = self.peek()
        if kind == ")":
            self.take()
            return {""}
        if kind not in (_IDENT, ","):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, item = self.take()
            if kind == _IDENT:
                values.add(item)
                kind2, lit2 = self.peek()
                if kind2 == ",":
                    continue
                if kind2 == ")":
                    break
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if kind == ",":
                if not values:
                    values.add("")
                kind2, _ = self.peek()
                if kind2 == ")":
                    values.add("")
                    break
                if kind2 == ",":
                    self.take()
                    values.add("")
                continue
            raise ValueError(f"found '{item}', expected: ',', or identifier")
        kind, _ = self.take()
        if kind != ")":
            raise ValueError(f"found '{lit}', expected: ')'")
        return values

    def exact_value(self) -> set[str]:
        kind, _ = self.peek()
        if kind in (_END, ","):
            return {""}
        kind, lit = self.take()
        if kind == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def parse_selector(text: str) -> Selector:
    """labels.Parse: `a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j,k>1`. A bad selector is a 400 carrying
    Kubernetes' parser message."""
    try:
        requirements = _Parser(text).parse()
    except ValueError as e:
        raise bad_request(str(e)) from None
    requirements.sort(key=lambda r: r.key)  # stable, as Go's sort.Sort on ByKey is for our purpose
    return Selector(tuple(requirements))


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """Equality on every pair; None or {} matches everything (labels.SelectorFromSet)."""
    return Selector(tuple(Requirement(k, Operator.EQUALS, (v,)) for k, v in sorted((labels or {}).items())))


_EXPRESSION_OPERATORS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
                         "DoesNotExist": Operator.DOES_NOT_EXIST}


def selector_from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """metav1.LabelSelectorAsSelector: a None selector matches NOTHING, while `{}` (no matchLabels and no
    matchExpressions) matches EVERYTHING — so a ReplicaSet with no selector adopts no pods, while a
    NetworkPolicy's `podSelector: {}` selects all. Raises StatusError 400 for a malformed selector."""
    if sel is None:
        return NOTHING
    if not isinstance(sel, Mapping):
        raise bad_request(f"invalid label selector: {sel!r}")
    match_labels = sel.get("matchLabels") or {}
    expressions = sel.get("matchExpressions") or []
    if not match_labels and not expressions:
        return Selector()
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise bad_request("matchLabels must be a map and matchExpressions a list")
    requirements: list[Requirement] = []
    try:
        for key, value in match_labels.items():
            requirements.append(_requirement(str(key), Operator.EQUALS, [str(value)]))
        for expr in expressions:
            op_name = expr.get("operator", "") if isinstance(expr, Mapping) else ""
            op = _EXPRESSION_OPERATORS.get(op_name)
            if op is None:
                raise ValueError(f'"{op_name}" is not a valid label selector operator')
            values = expr.get("values") or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError(f"values of {expr.get('key', '')!r} must be a list of strings")
            requirements.append(_requirement(str(expr.get("key", "")), op, values))
    except ValueError as e:
        raise bad_request(str(e)) from None
    requirements.sort(key=lambda r: r.key)
    return Selector(tuple(requirements))
