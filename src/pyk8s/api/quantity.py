"""Resource quantities (`100m`, `1Gi`, `1e3`), as apimachinery's resource.Quantity parses and prints them.

Values are exact `Decimal`s: the scheduler and quota code add and compare them, so no float rounding.
`canonical_quantity` gives the form Kubernetes stores and serves (`0.5` → `500m`, `1024Mi` → `1Gi`).
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal, InvalidOperation, localcontext
from typing import Literal

# The pattern Kubernetes quotes in its error message; the real grammar is _QUANTITY below.
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

_QUANTITY = re.compile(r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)([A-Za-z]*[-+]?[0-9]*)")
_EXPONENT = re.compile(r"[eE]([-+]?[0-9]+)")

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = {power: suffix for suffix, power in _BINARY.items()} | {0: ""}
_NANO = Decimal("1e-9")


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity; str(err) is Kubernetes' message."""


def _multiplier(suffix: str) -> tuple[Decimal, Format]:
    if suffix in _BINARY:
        return Decimal(1024) ** _BINARY[suffix], "BinarySI"
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix], "DecimalSI"
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent:
        return Decimal(10) ** int(exponent.group(1)), "DecimalExponent"
    raise QuantityError(SUFFIX_ERROR)


def _round_away(value: Decimal, quantum: Decimal) -> Decimal:
    """Round up in magnitude (inf.RoundUp), as Kubernetes does below its precision."""
    with localcontext() as ctx:
        ctx.prec = 80
        return value.quantize(quantum, rounding=ROUND_UP)


def parse_quantity_format(value: str | int | float) -> tuple[Decimal, Format]:
    """The exact value of a quantity and the format its suffix chose; below a nano it rounds up."""
    if isinstance(value, bool):
        raise QuantityError(QUANTITY_ERROR)
    if isinstance(value, int | float):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise QuantityError(QUANTITY_ERROR)
    match = _QUANTITY.fullmatch(value)
    if not match:
        raise QuantityError(QUANTITY_ERROR)
    sign, number, suffix = match.groups()
    multiplier, fmt = _multiplier(suffix)
    try:
        with localcontext() as ctx:
            ctx.prec = 80
            amount = Decimal(number) * multiplier
    except InvalidOperation as err:  # an absurd exponent
        raise QuantityError(QUANTITY_ERROR) from err
    if sign == "-":
        amount = -amount
    if amount.as_tuple().exponent < -9:  # type: ignore[operator]
        amount = _round_away(amount, _NANO)
    return amount, fmt


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity: `parse_quantity("100m") == Decimal("0.1")`, `"1Gi"` → 1073741824.

    JSON numbers (`cpu: 2`) are accepted as Kubernetes accepts them. Raises QuantityError.
    """
    return parse_quantity_format(value)[0]


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except QuantityError:
        return False
    return True


def format_quantity(value: Decimal, fmt: Format = "DecimalSI") -> str:
    """Quantity.String(): the canonical text of `value` in `fmt` (CanonicalizeBytes).

    Decimal forms use the largest exponent that is a multiple of 3 and keeps an integer mantissa
    (`1.5` → `1500m`, `12000` → `12k`); binary needs an integer of at least 1024 in magnitude, else it
    falls back to decimal (`512` → `512`, `1536Mi`, `1Gi`).
    """
    if value == 0:
        return "0"
    if fmt == "BinarySI" and (abs(value) < 1024 or value != value.to_integral_value()):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        number, power = int(value), 0
        while power < 6 and number % 1024 == 0:
            number //= 1024
            power += 1
        return f"{number}{_BINARY_SUFFIX[power]}"
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    shift = exponent % 3  # lower the exponent to a multiple of 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    text = f"{'-' if sign else ''}{mantissa}"
    if fmt == "DecimalSI" and exponent in _DECIMAL_SUFFIX:
        return text + _DECIMAL_SUFFIX[exponent]
    return text if exponent == 0 else f"{text}e{exponent}"


def canonical_quantity(value: str | int | float, *, milli: bool = False) -> str:
    """The form Kubernetes stores: `"0.5"` → `"500m"`, `"1024Mi"` → `"1Gi"`, `2` → `"2"`. With `milli`,
    round up to thousandths first, as Kubernetes does for every ResourceList. Raises QuantityError."""
    amount, fmt = parse_quantity_format(value)
    if milli and amount.as_tuple().exponent < -3:  # type: ignore[operator]
        amount = _round_away(amount, Decimal("0.001"))
    return format_quantity(amount, fmt)
