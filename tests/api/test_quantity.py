from decimal import Decimal

import pytest

from pyk8s.api.quantity import QUANTITY_ERROR, SUFFIX_ERROR, QuantityError, is_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1", Decimal(1)),
        ("1Gi", Decimal(1024**3)),
        ("128Mi", Decimal(128 * 1024**2)),
        ("1Ki", Decimal(1024)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1E", Decimal(10**18)),  # a bare E is the exa suffix, not an exponent
        ("2k", Decimal(2000)),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("+1M", Decimal(10**6)),
        ("-250m", Decimal("-0.25")),
        ("1n", Decimal("1e-9")),
        ("3u", Decimal("3e-6")),
        ("0.5Gi", Decimal(512 * 1024**2)),
        (2, Decimal(2)),  # `cpu: 2` in YAML is a JSON number
        (0.5, Decimal("0.5")),
    ],
)
def test_parses_kubernetes_quantities(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", QUANTITY_ERROR),
        ("abc", QUANTITY_ERROR),
        ("1.2.3", QUANTITY_ERROR),
        ("1 Gi", QUANTITY_ERROR),
        ("e3", QUANTITY_ERROR),
        ("Gi", QUANTITY_ERROR),
        ("1Gb", SUFFIX_ERROR),
        ("1e", SUFFIX_ERROR),
        ("1KI", SUFFIX_ERROR),
    ],
)
def test_rejects_malformed_quantities_with_kubernetes_message(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as err:
        parse_quantity(text)
    assert str(err.value) == message


def test_comparisons_are_exact() -> None:
    assert parse_quantity("1000m") == parse_quantity("1")
    assert parse_quantity("1024Mi") == parse_quantity("1Gi")
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")
    assert is_quantity("10Mi") and not is_quantity(True) and not is_quantity(None)
