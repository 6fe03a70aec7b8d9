"""Whole numbers in ASCII digits only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.digits import parse_digits


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("42", 42), ("0042", 42), (str(2**70), 2**70)])
def test_ascii_digits_are_numbers(text: str, number: int) -> None:
    assert parse_digits(text) == number


# "\u00b2" passes str.isdigit and fails int(); Arabic-Indic and fullwidth digits pass both; int() takes the rest.
@pytest.mark.parametrize("text", ["", "\u00b2", "\u0663", "\uff13", "-1", "+1", " 1", "1 ", "1_000", "1.0", "0x10"])
def test_anything_else_is_none(text: str) -> None:
    assert parse_digits(text) is None


@given(st.text())
def test_never_raises_and_agrees_with_the_ascii_digits(text: str) -> None:
    expected = int(text) if text and all("0" <= c <= "9" for c in text) else None
    assert parse_digits(text) == expected
