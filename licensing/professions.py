"""Professions and their registration-number formats.

The ``professions`` table (seeded by the ``l001`` migration) is the source of truth the
service validates against; ``PROFESSION_CODES`` mirrors its codes for the API schemas
(an enum in ``/openapi.json``), and a test keeps the two in step.

Registration numbers are decimal digits (1 to 8 in the API). They are stored in
canonical form, without leading zeros ("000123" and "123" are the same number), and the
profession's pattern is matched against that canonical form.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.errors import InvalidRegistrationNumber, UnknownProfession
from licensing.models import Profession

PROFESSION_CODES = ("doctor", "dentist", "pharmacist", "nurse", "midwife", "public_health_nurse")
# 1 to 8 digits, not all zeros (the length limit is a separate maxLength).
REGISTRATION_NUMBER_SYNTAX = r"^0*[1-9][0-9]*$"
REGISTRATION_NUMBER_MAX = 8


def canonical_registration_number(value: str) -> str | None:
    """Digits without leading zeros, or None when ``value`` is not 1 to 8 ASCII digits."""
    if not isinstance(value, str) or not 1 <= len(value) <= 8:
        return None
    if not (value.isascii() and value.isdigit()):
        return None
    return value.lstrip("0") or None


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def profession_patterns(session: Session) -> dict[str, re.Pattern[str]]:
    """Every profession's compiled registration-number pattern, by code."""
    rows = session.execute(select(Profession.code, Profession.registration_number_pattern))
    return {code: _compiled(pattern) for code, pattern in rows}


def validate_registration_number(session: Session, profession: str, value: str) -> str:
    """The canonical registration number for ``profession``; raises on a bad value."""
    pattern = session.scalar(
        select(Profession.registration_number_pattern).where(Profession.code == profession)
    )
    if pattern is None:
        raise UnknownProfession(
            "Unknown profession; the professions are " + ", ".join(PROFESSION_CODES) + "."
        )
    canonical = canonical_registration_number(value)
    if canonical is None or not _compiled(pattern).fullmatch(canonical):
        raise InvalidRegistrationNumber()
    return canonical
