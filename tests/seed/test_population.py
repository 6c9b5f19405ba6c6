"""The population generator and the bulk-import CSV."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from core.my_number import is_valid_my_number
from seed.population import (
    CSV_HEADER,
    NEEDS_NURSE_LICENCE,
    PROFESSIONS,
    generate_people,
    iter_licence_rows,
    write_licence_csv,
)

TODAY = date(2026, 6, 1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), count=st.integers(1, 300))
def test_my_numbers_are_valid_and_unique_for_any_seed(seed, count):
    numbers = [p.my_number for p in generate_people(count, seed=seed, today=TODAY)]
    assert all(is_valid_my_number(n) for n in numbers)
    assert len(set(numbers)) == count


def test_same_seed_same_people_other_seed_other_people():
    first = list(generate_people(50, seed=7, today=TODAY))
    assert first == list(generate_people(50, seed=7, today=TODAY))
    assert first != list(generate_people(50, seed=8, today=TODAY))


def test_population_is_realistic():
    people = list(generate_people(5000, seed=1, today=TODAY))
    licences = [lic for p in people for lic in p.licences]

    mains = Counter(p.profession for p in people)
    assert set(mains) == set(PROFESSIONS)
    assert mains["doctor"] + mains["nurse"] > 0.6 * len(people)  # mostly doctors and nurses

    for person in people:
        assert re.fullmatch(r"\S+ \S+", person.name)  # family name, space, given name
        if person.profession in NEEDS_NURSE_LICENCE:  # the law requires a nurse licence
            assert [lic.profession for lic in person.licences] == [person.profession, "nurse"]
            assert person.licences[0].registered_on >= person.licences[1].registered_on

    # Registration numbers: 1 to 8 digits, unique per profession.
    keys = [(lic.profession, lic.registration_number) for lic in licences]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[1-9][0-9]{0,7}", number) for _, number in keys)

    # Registered in the past, over decades, mostly in spring.
    dates = [lic.registered_on for lic in licences]
    assert all(date(1975, 1, 1) <= d < TODAY for d in dates)
    assert max(dates).year - min(dates).year > 30
    assert sum(3 <= d.month <= 6 for d in dates) > 0.7 * len(dates)

    # Planned statuses: most active, some suspended until a future date, a few revoked.
    statuses = Counter(lic.status for lic in licences)
    assert statuses["active"] > 0.85 * len(licences)
    assert 0.02 * len(licences) < statuses["suspended"] < 0.10 * len(licences)
    assert 0 < statuses["revoked"] < statuses["suspended"]
    for lic in licences:
        if lic.status == "suspended":
            assert lic.suspended_until > TODAY and lic.status_reason
        else:
            assert lic.suspended_until is None
        if lic.status == "revoked":
            assert lic.status_reason


def test_person_repr_has_no_my_number():
    person = next(generate_people(1, seed=3, today=TODAY))
    assert person.my_number not in repr(person)


def test_registration_numbers_widen_when_a_profession_runs_out():
    from random import Random

    from seed.population import _RegistrationNumbers

    numbers = _RegistrationNumbers(Random(0), 1)  # 1-digit numbers first: only 9 of them
    issued = [numbers.next() for _ in range(200)]
    assert sorted(issued[:9], key=int) == [str(i) for i in range(1, 10)]
    assert all(len(n) == 2 for n in issued[9:99])
    assert len(set(issued)) == 200


def test_csv_has_the_bulk_import_shape(tmp_path):
    path = tmp_path / "licences.csv"
    assert write_licence_csv(path, 2_500, seed=5, today=TODAY, chunk=1000) == 2_500

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert (
        tuple(rows[0])
        == CSV_HEADER
        == (
            "profession",
            "my_number",
            "name",
            "registration_number",
            "registered_on",
        )
    )
    body = rows[1:]
    assert len(body) == 2_500
    for profession, my_number, name, registration_number, registered_on in body:
        assert profession in PROFESSIONS
        assert is_valid_my_number(my_number)
        assert name
        assert re.fullmatch(r"[1-9][0-9]{0,7}", registration_number)
        assert date.fromisoformat(registered_on) < TODAY
    assert len({(r[0], r[3]) for r in body}) == len(body)
    # Same rows as the iterator (streaming produces no surprises).
    assert [tuple(r) for r in body] == list(iter_licence_rows(2_500, seed=5, today=TODAY))
