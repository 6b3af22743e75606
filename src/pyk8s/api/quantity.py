"""Resource quantities (`100m`, `1Gi`, `1e3`), as apimachinery's resource.Quantity parses them.

Values are exact `Decimal`s: the scheduler and quota code add and compare them, so no float rounding.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The pattern Kubernetes quotes in its error message; the real grammar is _QUANTITY below.
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_QUANTITY = re.compile(r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)([A-Za-z]*[-+]?[0-9]*)")
_EXPONENT = re.compile(r"[eE]([-+]?[0-9]+)")

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity; str(err) is Kubernetes' message."""


def _multiplier(suffix: str) -> Decimal:
    if suffix in _BINARY:
        return Decimal(1024) ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix]
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent:
        return Decimal(10) ** int(exponent.group(1))
    raise QuantityError(SUFFIX_ERROR)


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity: `parse_quantity("100m") == Decimal("0.1")`, `"1Gi"` → 1073741824.

    JSON numbers (`cpu: 2`) are accepted as Kubernetes accepts them. Raises QuantityError.
    """
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
    try:
        amount = Decimal(number) * _multiplier(suffix)
    except InvalidOperation as err:  # an absurd exponent
        raise QuantityError(QUANTITY_ERROR) from err
    return -amount if sign == "-" else amount


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except QuantityError:
        return False
    return True
