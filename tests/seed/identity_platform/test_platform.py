"""The embedded identity platform: people, enrolment, bulk, certificates, its own store."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from core import db
from core.my_number import is_valid_my_number
from identity import LICENSING_AGENCY, verifier_agency
from identity.errors import CertificateAlreadyRegistered, InvalidAgencyCode, InvalidMyNumber
from seed.identity_platform import platform as platform_module
from seed.identity_platform.crypto import new_person_ids
from seed.identity_platform.models import IdentityBase, Person
from seed.identity_platform.platform import certificate_key, valid_my_number
from tests.fixtures.identity import my_numbers
from tests.seed.identity_platform.threads import run_in_threads

INVALID = ["", "12345678901", "123456789017", "12345678901a", "１２３４５６７８９０１８", None, 1]


def _persons(platform) -> int:
    return platform.counts()["persons"]


@pytest.mark.parametrize("bad", INVALID)
def test_invalid_my_numbers_are_rejected_everywhere(identity_platform, certificate_factory, bad):
    with pytest.raises(InvalidMyNumber):
        identity_platform.code_for_my_number(LICENSING_AGENCY, bad)
    with pytest.raises(InvalidMyNumber):
        identity_platform.enrol(bad)
    with pytest.raises(InvalidMyNumber):
        identity_platform.register_certificate(certificate_factory(), bad)
    assert _persons(identity_platform) == 0


def test_bulk_rejection_names_the_position_and_enrols_nobody(identity_platform, my_number_factory):
    numbers = [my_number_factory(), my_number_factory(), "123456789017", my_number_factory()]
    with pytest.raises(InvalidMyNumber) as raised:
        identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    assert raised.value.position == 2
    assert "123456789017" not in str(raised.value)
    assert _persons(identity_platform) == 0


def test_a_single_string_is_not_a_sequence_of_numbers(identity_platform, my_number_factory):
    with pytest.raises(TypeError):
        identity_platform.codes_for_my_numbers(LICENSING_AGENCY, my_number_factory())


def test_enrolment_is_idempotent(identity_platform, my_number_factory):
    number = my_number_factory()
    first = identity_platform.enrol(number)
    assert identity_platform.enrol(number) == first
    identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    identity_platform.codes_for_my_numbers(verifier_agency("x"), [number, number])
    assert _persons(identity_platform) == 1
    assert len(first) == 32 and bytes.fromhex(first)


def test_bulk_equals_single_in_order_with_duplicates(identity_platform, my_number_factory):
    known = [my_number_factory() for _ in range(5)]
    single = {n: identity_platform.code_for_my_number(LICENSING_AGENCY, n) for n in known}
    fresh = [my_number_factory() for _ in range(7)]
    mixed = [fresh[0], known[1], fresh[1], fresh[0], known[1], *fresh[2:], *known]
    bulk = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, mixed)
    assert len(bulk) == len(mixed)
    assert bulk == [identity_platform.code_for_my_number(LICENSING_AGENCY, n) for n in mixed]
    assert all(bulk[mixed.index(n)] == code for n, code in single.items())
    assert _persons(identity_platform) == 12
    assert identity_platform.codes_for_my_numbers(LICENSING_AGENCY, []) == []


def test_bulk_spanning_many_statements_and_transactions(
    identity_platform, my_number_factory, monkeypatch
):
    monkeypatch.setattr(platform_module, "CHUNK", 7)
    monkeypatch.setattr(platform_module, "TRANSACTION_ROWS", 23)
    numbers = [my_number_factory() for _ in range(100)]
    first_half = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers[:50])
    everything = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    assert everything[:50] == first_half
    assert everything == [
        identity_platform.code_for_my_number(LICENSING_AGENCY, n) for n in numbers
    ]
    assert _persons(identity_platform) == 100


def test_a_concurrent_enrolment_wins_and_is_used(identity_platform, my_number_factory, monkeypatch):
    number = my_number_factory()
    theirs = identity_platform.enrol(number)
    # As if our lookup ran just before another process enrolled the same person.
    real_find = identity_platform._find_people
    calls = []

    def stale_first_lookup(conn, indexes, found):
        calls.append(len(indexes))
        if len(calls) > 1:
            real_find(conn, indexes, found)

    monkeypatch.setattr(identity_platform, "_find_people", stale_first_lookup)
    assert identity_platform.enrol(number) == theirs
    assert len(calls) == 2
    assert _persons(identity_platform) == 1


def test_parallel_first_use_enrols_each_person_once(identity_platform, my_number_factory):
    numbers = [my_number_factory() for _ in range(20)]
    results, errors = run_in_threads(
        lambda: identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    )
    assert not errors
    assert all(result == results[0] for result in results)
    assert _persons(identity_platform) == 20


def test_certificates_map_to_their_person(
    identity_platform, my_number_factory, certificate_factory
):
    number = my_number_factory()
    card = certificate_factory(serial=0x1234)
    assert identity_platform.code_for_certificate(LICENSING_AGENCY, card) is None
    identity_platform.register_certificate(card, number)
    identity_platform.register_certificate(card, number)  # idempotent
    code = identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    assert identity_platform.code_for_certificate(LICENSING_AGENCY, card) == code
    verifier = verifier_agency("v")
    assert identity_platform.code_for_certificate(verifier, card) == (
        identity_platform.code_for_my_number(verifier, number)
    )
    assert _persons(identity_platform) == 1


def test_a_renewed_card_maps_to_the_same_person_and_codes(
    identity_platform, my_number_factory, certificate_factory
):
    number = my_number_factory()
    old, renewed = certificate_factory(), certificate_factory()
    identity_platform.register_certificate(old, number)
    identity_platform.register_certificate(renewed, number)
    for agency in (LICENSING_AGENCY, verifier_agency("hospital")):
        assert identity_platform.code_for_certificate(agency, old) == (
            identity_platform.code_for_certificate(agency, renewed)
        )
    assert identity_platform.counts() == {"persons": 1, "certificates": 2}


def test_the_issuer_is_part_of_a_certificates_identity(
    identity_platform, my_number_factory, certificate_factory
):
    identity_platform.register_certificate(
        certificate_factory(7, "Issuing CA 1"), my_number_factory()
    )
    same_serial_other_issuer = certificate_factory(7, "Issuing CA 2")
    assert (
        identity_platform.code_for_certificate(LICENSING_AGENCY, same_serial_other_issuer) is None
    )


def test_a_certificate_cannot_move_to_someone_else(
    identity_platform, my_number_factory, certificate_factory
):
    card = certificate_factory()
    owner, other = my_number_factory(), my_number_factory()
    identity_platform.register_certificate(card, owner)
    with pytest.raises(CertificateAlreadyRegistered) as raised:
        identity_platform.register_certificate(card, other)
    assert raised.value.status == 409
    assert identity_platform.code_for_certificate(LICENSING_AGENCY, card) == (
        identity_platform.code_for_my_number(LICENSING_AGENCY, owner)
    )


def test_certificate_key_is_issuer_digest_and_lowercase_hex_serial(certificate_factory):
    issuer, serial = certificate_key(certificate_factory(0xABCDEF))
    assert serial == "abcdef"
    assert len(issuer) == 64 and int(issuer, 16) >= 0


def test_translate_refuses_a_well_formed_code_for_nobody(identity_platform, my_number_factory):
    identity_platform.enrol(my_number_factory())  # the store exists and has someone
    (nobody,) = new_person_ids(1)
    forged_with_our_keys = identity_platform.crypto.encode(nobody, LICENSING_AGENCY, 1)
    with pytest.raises(InvalidAgencyCode):
        identity_platform.translate(forged_with_our_keys, LICENSING_AGENCY, "verifier:x")


def test_the_store_is_its_own_database(app, identity_platform, my_number_factory, database_url):
    identity_platform.enrol(my_number_factory())
    store_url = app.config["IDENTITY_DATABASE_URL"]
    assert store_url != database_url
    assert store_url.startswith("sqlite:///") and store_url.startswith(
        f"sqlite:///{app.config['INSTANCE_PATH']}"
    )
    licensing = db.make_engine(database_url)
    with licensing.connect() as conn:
        licensing_tables = set(inspect(conn).get_table_names())
    licensing.dispose()
    assert not licensing_tables & set(IdentityBase.metadata.tables)
    assert not any(name.startswith("identity_") for name in licensing_tables)
    with identity_platform.engine.connect() as conn:
        store_tables = set(inspect(conn).get_table_names())
    assert set(IdentityBase.metadata.tables) <= store_tables
    assert "identity_alembic_version" in store_tables
    assert not store_tables & set(db.Base.metadata.tables)


def test_people_are_stored_encrypted_under_random_ids(identity_platform, my_number_factory):
    numbers = [my_number_factory() for _ in range(3)]
    ids = [identity_platform.enrol(n) for n in numbers]
    with identity_platform.engine.connect() as conn:
        rows = conn.execute(select(Person)).all()
    assert sorted(r.id for r in rows) == sorted(ids)
    for row in rows:
        assert len(row.my_number_index) == 32
        assert len(row.my_number_sealed) == 12 + 12 + 16  # nonce, digits, tag
        assert row.key_version == 1
        for number in numbers:
            assert number.encode() not in row.my_number_sealed
            assert number not in row.id
    # The platform can still read its own records.
    for number, person_id in zip(numbers, ids, strict=True):
        row = next(r for r in rows if r.id == person_id)
        opened = identity_platform.crypto.open_my_number(
            bytes.fromhex(person_id), row.my_number_sealed, row.key_version
        )
        assert opened == number


def test_certificate_lookup_is_one_indexed_query(
    identity_platform, my_number_factory, certificate_factory
):
    from sqlalchemy import event

    card = certificate_factory()
    identity_platform.register_certificate(card, my_number_factory())
    identity_platform.code_for_certificate(LICENSING_AGENCY, card)  # warm: keys verified
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(identity_platform.engine, "before_cursor_execute", record)
    try:
        identity_platform.code_for_certificate(LICENSING_AGENCY, card)
    finally:
        event.remove(identity_platform.engine, "before_cursor_execute", record)
    assert len(statements) == 1
    with identity_platform.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statements[0],
            (*certificate_key(card),),
        ).all()
    details = " ".join(str(row[-1]) for row in plan)
    # Both tables are searched by their primary key index; nothing is scanned.
    assert "SCAN" not in details, details
    assert details.count("SEARCH") == 2, details


@settings(max_examples=300)
@given(st.text(max_size=14) | my_numbers() | st.from_regex(r"[0-9]{12}", fullmatch=True))
def test_fast_validation_equals_core_validation(value):
    assert valid_my_number(value) is is_valid_my_number(value)


def test_person_ids_are_random_and_16_bytes():
    ids = new_person_ids(1000)
    assert len(set(ids)) == 1000
    assert all(len(i) == 16 for i in ids)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(numbers=st.lists(my_numbers(), max_size=12))
def test_bulk_equals_single_property(identity_platform, numbers):
    bulk = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    assert bulk == [identity_platform.code_for_my_number(LICENSING_AGENCY, n) for n in numbers]


def test_store_file_lives_under_the_instance(app, identity_platform, my_number_factory):
    identity_platform.enrol(my_number_factory())
    instance = Path(app.config["INSTANCE_PATH"])
    assert (instance / "identity_platform.sqlite3").exists()
    assert (instance / "identity_platform" / "master-keys.json").exists()


_AGENCY_NAMES = st.sampled_from(
    [LICENSING_AGENCY, verifier_agency("a"), verifier_agency("hospital-7"), verifier_agency("b")]
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(agencies=st.lists(_AGENCY_NAMES, max_size=5), registered=st.booleans())
def test_codes_for_certificate_equal_the_single_calls(
    identity_platform, my_number_factory, certificate_factory, agencies, registered
):
    card = certificate_factory()
    if registered:
        identity_platform.register_certificate(card, my_number_factory())
    codes = identity_platform.codes_for_certificate(card, agencies)
    singles = [identity_platform.code_for_certificate(agency, card) for agency in agencies]
    if registered:
        assert codes == singles
    else:
        assert codes is None
        assert all(single is None for single in singles)


def test_codes_for_certificate_checks_agencies_and_rejects_one_string(
    identity_platform, my_number_factory, certificate_factory
):
    card = certificate_factory()
    identity_platform.register_certificate(card, my_number_factory())
    with pytest.raises(TypeError):
        identity_platform.codes_for_certificate(card, LICENSING_AGENCY)
    with pytest.raises(ValueError):
        identity_platform.codes_for_certificate(card, [LICENSING_AGENCY, ""])
    assert identity_platform.codes_for_certificate(card, []) == []
    unregistered = certificate_factory()
    with pytest.raises(ValueError):
        identity_platform.codes_for_certificate(unregistered, [""])
