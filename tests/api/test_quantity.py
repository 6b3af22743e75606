from decimal import Decimal

import pytest

from pyk8s.api.quantity import (
    QUANTITY_ERROR,
    SUFFIX_ERROR,
    QuantityError,
    canonical_quantity,
    format_quantity,
    is_quantity,
    parse_quantity,
)


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


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("100m", "100m"), ("0.5", "500m"), ("1000m", "1"), ("1500m", "1500m"), ("2", "2"), (2, "2"),
        (0.25, "250m"), ("12000", "12k"), ("1500", "1500"), ("1000M", "1G"), ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("1024Mi", "1Gi"), ("1000Mi", "1000Mi"), ("0.5Gi", "512Mi"), ("1.5Gi", "1536Mi"), ("512", "512"),
        ("8039480Ki", "8039480Ki"), ("0", "0"), ("0Mi", "0"), ("-1.5", "-1500m"), ("0.0001", "100u"),
        ("5e-10", "1e-9"),  # below a nano rounds up
    ],
)  # fmt: skip
def test_canonical_form_is_what_kubernetes_serves(text: str | int | float, canonical: str) -> None:
    assert canonical_quantity(text) == canonical
    assert canonical_quantity(canonical) == canonical  # stable


def test_resource_lists_round_up_to_milli() -> None:
    assert canonical_quantity("0.0001", milli=True) == "1m"
    assert canonical_quantity("1n", milli=True) == "1m"
    assert canonical_quantity("-0.0001", milli=True) == "-1m"
    assert canonical_quantity("250m", milli=True) == "250m"


def test_format_falls_back_to_decimal_for_small_or_fractional_binary() -> None:
    assert format_quantity(Decimal(1000), "BinarySI") == "1k"
    assert format_quantity(Decimal("1536.5"), "BinarySI") == "1536500m"
    assert format_quantity(Decimal(2048), "BinarySI") == "2Ki"
    assert format_quantity(Decimal(10) ** 21, "DecimalSI") == "1e21"
