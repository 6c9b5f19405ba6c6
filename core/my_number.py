"""My Number (個人番号) format and check digit, as defined by the numbering ordinance."""

from __future__ import annotations

_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def check_digit(first_eleven: str) -> int:
    """Check digit for the first 11 digits (weights 6,5,4,3,2,7,6,5,4,3,2 from the left)."""
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise ValueError("eleven ASCII digits expected")
    remainder = sum(int(d) * w for d, w in zip(first_eleven, _WEIGHTS, strict=True)) % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_my_number(value: object) -> bool:
    """True for a string of exactly 12 ASCII digits whose last digit is the check digit."""
    if not isinstance(value, str) or len(value) != 12:
        return False
    if not (value.isascii() and value.isdigit()):
        return False
    return check_digit(value[:11]) == int(value[11])
