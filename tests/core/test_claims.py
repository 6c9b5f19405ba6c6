"""core.claims: the one checker of time claims and 64-bit integers (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.claims import (
    INT64_MAX,
    INT64_MIN,
    ClaimsError,
    Problem,
    check_times,
    is_int64,
)

NOW = 1_800_000_000
int64s = st.integers(INT64_MIN, INT64_MAX)
beyond = st.one_of(st.integers(INT64_MAX + 1), st.integers(max_value=INT64_MIN - 1))
not_integers = st.one_of(
    st.booleans(), st.floats(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)
)


def _problem(payload, **bounds) -> Problem | None:
    try:
        check_times(payload, now=NOW, **bounds)
    except ClaimsError as error:
        return error.problem
    return None


@given(int64s)
def test_int64_values_are_integers(value):
    assert is_int64(value)


@given(beyond)
def test_integers_beyond_64_bits_are_refused(value):
    assert not is_int64(value)


@given(not_integers)
def test_other_json_values_are_not_integers(value):
    assert not is_int64(value)


@given(iat=st.integers(NOW - 1000, NOW + 1000), lifetime=st.integers(-10, 400))
def test_the_assertion_bounds(iat, lifetime):
    """The card assertion's rule, spelled out: leeway 60 s, lifetime in (0, 300]."""
    payload = {"iat": iat, "exp": iat + lifetime}
    expected = None
    if not 0 < lifetime <= 300:
        expected = Problem.LIFETIME
    elif iat > NOW + 60:
        expected = Problem.FUTURE
    elif iat + lifetime <= NOW - 60:
        expected = Problem.EXPIRED
    assert _problem(payload, leeway=60, max_lifetime=300) == expected


@given(name=st.sampled_from(["iat", "exp", "nbf"]), value=st.one_of(not_integers, beyond))
def test_malformed_numeric_dates_are_refused(name, value):
    payload = {"iat": NOW, "exp": NOW + 10, "nbf": NOW} | {name: value}
    assert _problem(payload, leeway=0) is Problem.MALFORMED


@pytest.mark.parametrize(
    ("payload", "bounds", "expected"),
    [
        ({"exp": NOW + 10}, {}, Problem.MISSING),
        ({"iat": NOW}, {}, Problem.MISSING),
        ({"iat": NOW}, {"require_exp": False}, None),
        ({"iat": NOW, "exp": NOW + 10}, {"require_nbf": True}, Problem.MISSING),
        ({"iat": NOW, "exp": NOW + 10, "nbf": NOW + 61}, {"leeway": 60}, Problem.NOT_YET_VALID),
        ({"iat": NOW, "exp": NOW + 10, "nbf": NOW + 60}, {"leeway": 60}, None),
        ({"iat": NOW - 400}, {"require_exp": False, "max_age": 300}, Problem.TOO_OLD),
        ({"iat": NOW - 300}, {"require_exp": False, "max_age": 300}, None),
        ({"iat": NOW, "exp": NOW}, {}, Problem.EXPIRED),
        ({"iat": NOW, "exp": NOW + 1}, {}, None),
        ({"iat": NOW + 1, "exp": NOW + 10}, {}, Problem.FUTURE),
    ],
)
def test_each_call_names_its_bounds(payload, bounds, expected):
    assert _problem(payload, **({"leeway": 0} | bounds)) == expected


def test_negative_leeway_is_a_programming_error():
    with pytest.raises(ValueError):
        check_times({"iat": NOW, "exp": NOW + 1}, now=NOW, leeway=-1)


@given(st.integers(min_value=19, max_value=5000))
def test_a_jws_payload_with_a_long_integer_is_not_strict_json(digits):
    from core import jws

    with pytest.raises(jws.JwsError):
        jws.strict_json(('{"iat": 1' + "0" * digits + "}").encode())
    assert jws.strict_json(json.dumps({"iat": INT64_MAX}).encode()) == {"iat": INT64_MAX}
