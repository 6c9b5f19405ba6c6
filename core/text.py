"""Free text from clients and files (names, reasons): one validator, one CSV-cell guard.

``clean_text`` normalises to NFC and refuses what would corrupt a terminal, a log, a
page or a record: NUL and every other control character (C0, DEL, C1, so ANSI escape
sequences too), bidirectional embeddings, overrides and isolates (they reorder what a
reader sees), and anything that looks like a My Number: twelve digits (ASCII or
full-width) in a row or as three groups of four with a separator (a hyphen, dash or
space) between them, as the number is printed on the card. A refused value is a 422
``unprocessable`` whose detail names the field and what to remove, never the value.
"""

from __future__ import annotations

import unicodedata

from core.errors import Unprocessable
from core.my_number import MY_NUMBER_LIKE

# Embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069), and the marks
# (LRM, RLM, ALM), which Trojan Source style text uses with them.
_BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# A cell starting with one of these is a formula (or becomes one) in a spreadsheet.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def looks_like_my_number(text: str) -> bool:
    """Twelve ASCII or full-width digits, in a row or as 4-4-4 with separators."""
    return MY_NUMBER_LIKE.search(text) is not None


def text_problem(text: str) -> str | None:
    """What is wrong with ``text`` (already NFC), as an instruction; None when it is fine."""
    for char in text:
        if unicodedata.category(char) == "Cc":
            return "contains a control character (such as a line break, tab or escape); remove it"
        if char in _BIDI_CONTROLS:
            return "contains a bidirectional-text control character; remove it"
    if looks_like_my_number(text):
        return "contains a twelve-digit number like a My Number; leave it out"
    return None


def clean_text(value: object, *, field: str, max_length: int) -> str:
    """``value`` NFC-normalised and stripped; 422 ``unprocessable`` when it is empty, too
    long, or holds a control character, a bidi control or a My Number-like number."""
    text = unicodedata.normalize("NFC", value).strip() if isinstance(value, str) else ""
    if not text or len(text) > max_length:
        raise Unprocessable(f"The {field} must be 1 to {max_length} characters.")
    problem = text_problem(text)
    if problem is not None:
        raise Unprocessable(f"The {field} {problem}.")
    return text


def spreadsheet_safe(cell: object) -> object:
    """A CSV cell that a spreadsheet will show as text: a leading ``'`` before a formula
    prefix (OWASP's CSV-injection guidance). Other values pass through unchanged."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_PREFIXES):
        return "'" + cell
    return cell
