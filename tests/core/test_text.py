"""The free-text validator and the CSV-cell guard (``core.text``)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import Unprocessable
from core.text import clean_text, looks_like_my_number, spreadsheet_safe

_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _clean(value: str) -> str:
    return clean_text(value, field="reason", max_length=500)


@pytest.mark.parametrize(
    "value,what",
    [
        ("a\x00b", "control character"),
        ("line\nbreak", "control character"),
        ("tab\there", "control character"),
        ("\x1b[31mred\x1b[0m", "control character"),
        ("c1\x9bcontrol", "control character"),
        ("del\x7f", "control character"),
        ("abc\u202edcba", "bidirectional"),
        ("x\u2066y\u2069", "bidirectional"),
        ("number 123456789012 here", "My Number"),
        ("number 1234-5678-9012", "My Number"),
        ("number 1234 5678 9012", "My Number"),
        ("番号 １２３４５６７８９０１２", "My Number"),
        ("番号 １２３４－５６７８－９０１２", "My Number"),
        ("", "1 to 500 characters"),
        ("   ", "1 to 500 characters"),
        ("x" * 501, "1 to 500 characters"),
    ],
)
def test_refused_values_say_what_to_fix_without_echoing_them(value, what):
    with pytest.raises(Unprocessable) as caught:
        _clean(value)
    assert what in caught.value.detail and caught.value.detail.startswith("The reason ")
    assert caught.value.code == "unprocessable"
    if value.strip():
        assert value.strip() not in caught.value.detail


@pytest.mark.parametrize(
    "value",
    [
        "佐藤 花子",
        "O'Brien-Smith",
        "licence 12345678901 (11 digits)",
        "1234567890123",
        "2026-01-01",
    ],
)
def test_ordinary_text_passes(value):
    assert _clean(value) == value


def test_text_is_nfc_normalised_and_stripped():
    decomposed = "  Jose\u0301 ﾃｽﾄ "
    assert _clean(decomposed) == unicodedata.normalize("NFC", "Jose\u0301 ﾃｽﾄ")
    assert _clean(decomposed) == "José ﾃｽﾄ"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_any_text_is_either_clean_nfc_or_a_422(value):
    try:
        cleaned = _clean(value)
    except Unprocessable:
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert not any(unicodedata.category(c) == "Cc" for c in cleaned)
    assert not looks_like_my_number(cleaned)


@given(
    st.from_regex(r"\A[0-9]{12}\Z"),
    st.sampled_from(["", " ", "-", "\u3000", "\uff0d", "\u2212"]),
    st.booleans(),
    st.text(alphabet="abc ", max_size=5),
)
def test_every_form_of_twelve_digits_is_refused(digits, separator, full_width, around):
    number = separator.join((digits[:4], digits[4:8], digits[8:]))
    if full_width:
        number = number.translate(_FULL_WIDTH)
    with pytest.raises(Unprocessable):
        _clean(f"reason{around}{number}{around}x")


@given(st.text(max_size=20))
def test_spreadsheet_cells_never_start_a_formula(cell):
    safe = spreadsheet_safe(cell)
    assert not str(safe).startswith(("=", "+", "-", "@", "\t", "\r"))
    assert str(safe).removeprefix("'") == cell or safe == cell


@pytest.mark.parametrize("cell", ['=HYPERLINK("x")', "+1", "-1+1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_prefixes_are_neutralised(cell):
    assert spreadsheet_safe(cell) == "'" + cell
    assert spreadsheet_safe(7) == 7
