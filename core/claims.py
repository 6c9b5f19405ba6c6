"""The one checker of JWT time claims (``iat``, ``exp``, ``nbf``) and integers.

Every token the service reads (card assertions, SD-JWT VCs and their key-binding JWTs,
holder sessions, status lists) goes through ``check_times``, and each call names its
own bounds: which claims it requires, the clock leeway, the longest lifetime, the
oldest acceptable ``iat``. Numeric dates are JSON integers within 64 bits (RFC 7519
NumericDate; a float, a boolean or a 5,000-digit number is malformed, never a crash).

The rules, with ``now`` in seconds since the epoch:
- ``iat`` after ``now + leeway``: issued in the future;
- ``iat`` before ``now - max_age - leeway``: too old;
- ``exp`` at or before ``now - leeway``: expired;
- ``nbf`` after ``now + leeway``: not yet valid;
- ``exp - iat`` not in ``(0, max_lifetime]``: lifetime out of bounds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from core.strict_json import MAX_INTEGER, MIN_INTEGER

INT64_MIN, INT64_MAX = MIN_INTEGER, MAX_INTEGER
#: Decimal digits of the longest 64-bit integer (with its sign): a longer JSON number is
#: refused before Python converts it (which would be quadratic, then raise ValueError).


class Problem(enum.StrEnum):
    MALFORMED = "malformed"
    MISSING = "missing"
    LIFETIME = "lifetime"
    FUTURE = "future"
    TOO_OLD = "too_old"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class ClaimsError(Exception):
    """A time claim is missing, malformed or out of bounds (``problem`` says which)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.value)


def is_int64(value: Any) -> bool:
    """A JSON integer within 64 bits (``bool`` is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return INT64_MIN <= value <= INT64_MAX


@dataclass(frozen=True)
class TimeClaims:
    issued_at: int | None
    expires_at: int | None
    not_before: int | None


def _numeric_date(payload: dict[str, Any], name: str, required: bool) -> int | None:
    if name not in payload:
        if required:
            raise ClaimsError(Problem.MISSING)
        return None
    value = payload[name]
    if not is_int64(value):
        raise ClaimsError(Problem.MALFORMED)
    return value


def check_times(
    payload: dict[str, Any],
    *,
    now: float,
    leeway: int,
    max_lifetime: int | None = None,
    max_age: int | None = None,
    require_iat: bool = True,
    require_exp: bool = True,
    require_nbf: bool = False,
) -> TimeClaims:
    """The time claims of ``payload`` within these bounds, or ``ClaimsError``.

    ``max_lifetime`` (seconds) bounds ``exp - iat`` when both are present;
    ``max_age`` bounds how long ago ``iat`` may be. A claim not required may be absent,
    but if present it is checked like a required one.
    """
    if leeway < 0:
        raise ValueError("leeway must not be negative")
    issued_at = _numeric_date(payload, "iat", require_iat)
    expires_at = _numeric_date(payload, "exp", require_exp)
    not_before = _numeric_date(payload, "nbf", require_nbf)
    if max_lifetime is not None and issued_at is not None and expires_at is not None:
        if not 0 < expires_at - issued_at <= max_lifetime:
            raise ClaimsError(Problem.LIFETIME)
    if issued_at is not None:
        if issued_at > now + leeway:
            raise ClaimsError(Problem.FUTURE)
        if max_age is not None and issued_at < now - max_age - leeway:
            raise ClaimsError(Problem.TOO_OLD)
    if not_before is not None and not_before > now + leeway:
        raise ClaimsError(Problem.NOT_YET_VALID)
    if expires_at is not None and expires_at <= now - leeway:
        raise ClaimsError(Problem.EXPIRED)
    return TimeClaims(issued_at, expires_at, not_before)
