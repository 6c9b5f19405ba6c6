"""My Number check digit (weights 6,5,4,3,2,7,6,5,4,3,2; 0 when r <= 1, else 11 - r)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.my_number import check_digit, is_valid_my_number
from tests.fixtures.identity import my_numbers

ELEVEN = st.text(alphabet="0123456789", min_size=11, max_size=11)


def _reference_check_digit(first_eleven: str) -> int:
    # Straight from the ordinance: P(n) digits from the right, Q(n) = n+1 (n<=6), n-5.
    digits = [int(d) for d in reversed(first_eleven)]
    total = sum(p * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(digits, start=1))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("123456789018", True),  # a commonly cited example
        ("123456789017", False),
        ("000000000000", True),  # sum 0 -> r 0 -> check digit 0
        ("12345678901", False),
        ("1234567890180", False),
        ("12345678901a", False),
        (" 23456789018", False),
        ("１２３４５６７８９０１８", False),  # full-width digits
        ("٠٠٠٠٠٠٠٠٠٠٠٠", False),  # Arabic-Indic digits pass str.isdigit()
        ("", False),
    ],
)
def test_examples(number, valid):
    assert is_valid_my_number(number) is valid


@pytest.mark.parametrize("value", [None, 123456789018, b"123456789018", ["123456789018"]])
def test_non_strings_are_invalid(value):
    assert is_valid_my_number(value) is False


@given(ELEVEN)
def test_check_digit_matches_the_ordinance(first_eleven):
    assert check_digit(first_eleven) == _reference_check_digit(first_eleven)
    assert 0 <= check_digit(first_eleven) <= 9


@given(ELEVEN)
def test_exactly_one_check_digit_completes_eleven_digits(first_eleven):
    valid = [d for d in "0123456789" if is_valid_my_number(first_eleven + d)]
    assert valid == [str(check_digit(first_eleven))]


@given(my_numbers(), st.integers(min_value=1, max_value=9))
def test_changing_the_check_digit_invalidates(number, delta):
    changed = number[:11] + str((int(number[11]) + delta) % 10)
    assert not is_valid_my_number(changed)


@given(my_numbers(), st.integers(min_value=0, max_value=10), st.integers(1, 9))
def test_a_single_changed_digit_is_caught_unless_the_remainder_stays_in_0_1(
    number, position, delta
):
    digits = list(number)
    digits[position] = str((int(digits[position]) + delta) % 10)
    changed = "".join(digits)
    weights = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

    def remainder(value: str) -> int:
        return sum(int(d) * w for d, w in zip(value[:11], weights, strict=True)) % 11

    # Weights and deltas are below 11 (a prime), so the remainder always changes; only
    # the shared check digit of remainders 0 and 1 lets a change through.
    assert remainder(changed) != remainder(number)
    if {remainder(changed), remainder(number)} != {0, 1}:
        assert not is_valid_my_number(changed)


@given(st.text(max_size=20))
def test_arbitrary_text_is_valid_only_if_it_is_twelve_ascii_digits_with_check_digit(text):
    expected = (
        len(text) == 12
        and text.isascii()
        and text.isdigit()
        and check_digit(text[:11]) == int(text[11])
    )
    assert is_valid_my_number(text) is expected


@pytest.mark.parametrize("bad", ["1234567890", "1234567890a", "１２３４５６７８９０１"])
def test_check_digit_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        check_digit(bad)
