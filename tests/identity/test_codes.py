"""Properties of agency-specific codes (機関別符号), through the public interface."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity import LICENSING_AGENCY, verifier_agency
from identity.errors import InvalidAgencyCode
from tests.fixtures.identity import my_numbers

CODE_FORMAT = re.compile(r"v[1-9][0-9]*\.[A-Za-z0-9_-]{43}")
BASE64URL = string.ascii_letters + string.digits + "-_"

agencies = st.one_of(
    st.just(LICENSING_AGENCY),
    st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=32).map(
        verifier_agency
    ),
)
property_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@property_settings
@given(my_number=my_numbers(), agency=agencies)
def test_codes_are_stable_per_agency_and_person(identity_platform, my_number, agency):
    code = identity_platform.code_for_my_number(agency, my_number)
    assert CODE_FORMAT.fullmatch(code)
    assert identity_platform.code_for_my_number(agency, my_number) == code
    assert identity_platform.codes_for_my_numbers(agency, [my_number, my_number]) == [code, code]
    assert my_number not in code


@property_settings
@given(my_number=my_numbers(), first=agencies, second=agencies)
def test_codes_differ_across_agencies(identity_platform, my_number, first, second):
    a = identity_platform.code_for_my_number(first, my_number)
    b = identity_platform.code_for_my_number(second, my_number)
    assert (a == b) is (first == second)


@property_settings
@given(first=my_numbers(), second=my_numbers(), agency=agencies)
def test_different_people_get_different_codes(identity_platform, first, second, agency):
    a, b = identity_platform.codes_for_my_numbers(agency, [first, second])
    assert (a == b) is (first == second)


@property_settings
@given(my_number=my_numbers(), source=agencies, target=agencies)
def test_translation_round_trips(identity_platform, my_number, source, target):
    code = identity_platform.code_for_my_number(source, my_number)
    translated = identity_platform.translate(code, source, target)
    assert translated == identity_platform.code_for_my_number(target, my_number)
    assert identity_platform.translate(translated, target, source) == code


@property_settings
@given(my_number=my_numbers(), source=agencies, wrong=agencies, target=agencies)
def test_a_code_presented_as_another_agencys_fails(
    identity_platform, my_number, source, wrong, target
):
    code = identity_platform.code_for_my_number(source, my_number)
    if wrong == source:
        return
    with pytest.raises(InvalidAgencyCode):
        identity_platform.translate(code, wrong, target)


@property_settings
@given(
    my_number=my_numbers(),
    agency=agencies,
    position=st.integers(min_value=0, max_value=42),
    replacement=st.sampled_from(BASE64URL),
)
def test_a_tampered_code_fails(identity_platform, my_number, agency, position, replacement):
    code = identity_platform.code_for_my_number(agency, my_number)
    prefix, body = code.split(".")
    if body[position] == replacement:
        return
    tampered = f"{prefix}.{body[:position]}{replacement}{body[position + 1 :]}"
    with pytest.raises(InvalidAgencyCode):
        identity_platform.translate(tampered, agency, LICENSING_AGENCY)


@property_settings
@given(garbage=st.text(max_size=80), agency=agencies)
def test_made_up_codes_fail(identity_platform, garbage, agency):
    with pytest.raises(InvalidAgencyCode):
        identity_platform.translate(garbage, agency, LICENSING_AGENCY)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c[:-1],  # truncated
        lambda c: c + "A",  # extended
        lambda c: c.replace("v1.", "v2.", 1),  # unknown version
        lambda c: c.replace("v1.", "v01.", 1),  # non-canonical version
        lambda c: c.replace("v1.", "", 1),  # no version
        lambda c: c + "=",  # padded
        lambda c: c.upper(),
        lambda c: " " + c,
    ],
)
def test_malformed_codes_fail(identity_platform, my_number_factory, mutate):
    code = identity_platform.code_for_my_number(LICENSING_AGENCY, my_number_factory())
    assert code.startswith("v1.")
    with pytest.raises(InvalidAgencyCode):
        identity_platform.translate(mutate(code), LICENSING_AGENCY, "verifier:x")


@pytest.mark.parametrize("value", [None, 42, b"v1.abc"])
def test_non_string_codes_fail(identity_platform, value):
    with pytest.raises(InvalidAgencyCode):
        identity_platform.translate(value, LICENSING_AGENCY, "verifier:x")


@pytest.mark.parametrize("agency", ["", "x" * 201, "licensing\n", "機関"])
def test_agency_names_are_checked(identity_platform, my_number_factory, agency):
    with pytest.raises(ValueError):
        identity_platform.code_for_my_number(agency, my_number_factory())


def test_two_verifiers_get_different_subjects_each_stable(identity_platform, my_number_factory):
    number = my_number_factory()
    licensing_code = identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    first, second = verifier_agency("hospital-a"), verifier_agency("hospital-b")
    a1 = identity_platform.translate(licensing_code, LICENSING_AGENCY, first)
    b1 = identity_platform.translate(licensing_code, LICENSING_AGENCY, second)
    assert a1 != b1
    assert identity_platform.translate(licensing_code, LICENSING_AGENCY, first) == a1
    assert identity_platform.translate(licensing_code, LICENSING_AGENCY, second) == b1
    # Neither verifier can use its subject as the other's, nor as the licensing code.
    for code, wrong in ((a1, second), (b1, first), (a1, LICENSING_AGENCY)):
        with pytest.raises(InvalidAgencyCode):
            identity_platform.translate(code, wrong, LICENSING_AGENCY)
