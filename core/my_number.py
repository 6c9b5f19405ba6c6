"""My Number (個人番号) format and check digit, as defined by the numbering ordinance."""

from __future__ import annotations

import re

_DIGIT = "0-9\uff10-\uff19"  # ASCII and full-width digits
# Hyphens and dashes (ASCII, Unicode, full-width), the minus sign, and both spaces.
_SEPARATOR = "\\- \u2010-\u2015\u2212\uff0d\u3000"
#: Twelve ASCII or full-width digits, in a row or as 4-4-4 with one separator per gap:
#: how a My Number is written. The log scrubber redacts the matches that pass the check
#: digit; free text refuses every match.
MY_NUMBER_LIKE = re.compile(
    f"(?<![{_DIGIT}])[{_DIGIT}]{{4}}[{_SEPARATOR}]?[{_DIGIT}]{{4}}[{_SEPARATOR}]?"
    f"[{_DIGIT}]{{4}}(?![{_DIGIT}])"
)
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
