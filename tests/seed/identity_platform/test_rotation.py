"""Key rotation: a new master key version, every person still reachable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.orm import Session

from app import create_app, import_models
from core import db
from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
from identity.errors import IdentityKeyError
from seed.identity_platform import platform as platform_module
from seed.identity_platform import rotation as rotation_module
from seed.identity_platform.keys import ENV_VAR, new_master_key
from seed.identity_platform.models import Person, PlatformState
from seed.identity_platform.rotation import (
    KeyRotationAborted,
    licensing_code_columns,
    rotate_keys,
)

PEOPLE = 120


@pytest.fixture
def licensing_like(tmp_path):
    """A licensing-like table in a throwaway database: one marked code column per row."""
    metadata = MetaData()
    table = Table(
        "probe_licences",
        metadata,
        Column("pk", Integer, primary_key=True),
        Column("holder_code", String(200), nullable=True, info={"agency_code": "licensing"}),
        Column("note", String(200)),
    )
    pairs = Table(  # a composite primary key, to exercise keyset paging
        "probe_pairs",
        metadata,
        Column("a", String(10), primary_key=True),
        Column("b", Integer, primary_key=True),
        Column("code", String(200), info={"agency_code": "licensing"}),
    )
    engine = db.make_engine(f"sqlite:///{tmp_path / 'licensing-like.sqlite3'}")
    metadata.create_all(engine)
    session = Session(engine)
    yield metadata, table, pairs, session
    session.close()
    engine.dispose()


def _fill(identity_platform, my_number_factory, certificate_factory, table, pairs, session):
    numbers = [my_number_factory() for _ in range(PEOPLE)]
    codes = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    session.execute(
        table.insert(),
        [{"pk": i, "holder_code": c, "note": c} for i, c in enumerate(codes)]
        + [{"pk": PEOPLE, "holder_code": None, "note": "no holder"}],
    )
    session.execute(
        pairs.insert(), [{"a": f"x{i % 3}", "b": i, "code": c} for i, c in enumerate(codes[:40])]
    )
    session.commit()
    cards = {}
    for number in numbers[:10]:
        cards[number] = certificate_factory()
        identity_platform.register_certificate(cards[number], number)
    return numbers, codes, cards


def test_marked_columns_are_found():
    metadata = MetaData()
    Table(
        "t",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("c", String, info={"agency_code": "licensing"}),
        Column("d", String, info={"agency_code": "verifier"}),
    )
    assert [(t.name, c.name) for t, c in licensing_code_columns(metadata)] == [("t", "c")]


def test_rotation_rekeys_everything_and_loses_nobody(
    app, identity_platform, my_number_factory, certificate_factory, licensing_like, monkeypatch
):
    monkeypatch.setattr(platform_module, "CHUNK", 17)  # several pages per table
    monkeypatch.setattr(rotation_module, "CHUNK", 17)
    metadata, table, pairs, session = licensing_like
    numbers, old_codes, cards = _fill(
        identity_platform, my_number_factory, certificate_factory, table, pairs, session
    )
    verifier = verifier_agency("hospital")
    old_subject = identity_platform.translate(old_codes[0], LICENSING_AGENCY, verifier)
    with identity_platform.engine.connect() as conn:
        sealed_before = dict(conn.execute(select(Person.id, Person.my_number_sealed)).all())

    report = rotate_keys(session, identity_platform, metadata)

    assert (report.from_version, report.to_version) == (1, 2)
    assert report.persons == PEOPLE
    assert report.licensing_codes == {"probe_licences.holder_code": PEOPLE, "probe_pairs.code": 40}
    assert identity_platform.current_key_version() == 2
    assert identity_platform.counts() == {"persons": PEOPLE, "certificates": 10}
    key_file = Path(app.config["IDENTITY_MASTER_KEY_FILE"])
    assert sorted(json.loads(key_file.read_text())["keys"]) == ["1", "2"]

    # Every person is reachable: by My Number, by card, from the stored codes.
    stored = dict(session.execute(select(table.c.pk, table.c.holder_code)).all())
    assert stored[PEOPLE] is None
    current = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    assert [stored[i] for i in range(PEOPLE)] == current
    assert all(code.startswith("v2.") for code in current)
    assert set(current).isdisjoint(old_codes)
    for i, number in enumerate(numbers):
        assert identity_platform.code_for_my_number(LICENSING_AGENCY, number) == current[i]
    for number, card in cards.items():
        assert (
            identity_platform.code_for_certificate(LICENSING_AGENCY, card)
            == (current[numbers.index(number)])
        )
    pair_codes = session.execute(select(pairs.c.b, pairs.c.code)).all()
    assert all(code == current[b] for b, code in pair_codes)
    # Unmarked columns are left alone; no one was enrolled twice.
    notes = session.execute(select(table.c.note).where(table.c.pk < PEOPLE)).scalars().all()
    assert sorted(notes) == sorted(old_codes)
    # Old codes handed out before (a verifier's subject) still decode and translate.
    assert identity_platform.translate(old_subject, verifier, LICENSING_AGENCY) == current[0]
    assert (
        identity_platform.translate(old_codes[1], LICENSING_AGENCY, LICENSING_AGENCY)
        == (current[1])
    )
    # My Numbers were re-encrypted under the new version.
    with identity_platform.engine.connect() as conn:
        rows = conn.execute(select(Person.id, Person.my_number_sealed, Person.key_version)).all()
    assert {r.key_version for r in rows} == {2}
    assert all(sealed_before[r.id] != r.my_number_sealed for r in rows)

    # And again: version 3, still everybody.
    again = rotate_keys(session, identity_platform, metadata)
    assert (again.from_version, again.to_version, again.persons) == (2, 3, PEOPLE)
    stored = dict(session.execute(select(table.c.pk, table.c.holder_code)).all())
    assert [stored[i] for i in range(PEOPLE)] == identity_platform.codes_for_my_numbers(
        LICENSING_AGENCY, numbers
    )


def test_other_processes_follow_a_rotation(
    app, identity_platform, my_number_factory, licensing_like
):
    metadata, table, pairs, session = licensing_like
    number = my_number_factory()
    code = identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    session.execute(table.insert(), [{"pk": 1, "holder_code": code}])
    session.commit()
    # A second worker that started (and cached version 1) before the rotation.
    worker = create_app(
        {"INSTANCE_PATH": app.config["INSTANCE_PATH"], "DATABASE_URL": app.config["DATABASE_URL"]}
    )
    with worker.app_context():
        assert get_identity_platform().code_for_my_number(LICENSING_AGENCY, number) == code
    rotate_keys(session, identity_platform, metadata)
    rotated = session.execute(select(table.c.holder_code)).scalar_one()
    with worker.app_context():
        other = get_identity_platform()
        assert other.code_for_my_number(LICENSING_AGENCY, number) == rotated
        assert other.translate(code, LICENSING_AGENCY, LICENSING_AGENCY) == rotated


def _snapshot(identity_platform, session, table):
    with identity_platform.engine.connect() as conn:
        people = sorted(
            conn.execute(select(Person.id, Person.my_number_sealed, Person.key_version)).all()
        )
        state = conn.execute(select(PlatformState.current_key_version)).scalar_one()
    return people, state, sorted(session.execute(select(table.c.pk, table.c.holder_code)).all())


@pytest.mark.parametrize("damage", ["tampered", "unknown person"])
def test_a_bad_stored_code_aborts_with_nothing_changed(
    identity_platform, my_number_factory, certificate_factory, licensing_like, damage
):
    metadata, table, pairs, session = licensing_like
    numbers, codes, _cards = _fill(
        identity_platform, my_number_factory, certificate_factory, table, pairs, session
    )
    if damage == "tampered":
        bad = codes[5][:-2] + ("AA" if not codes[5].endswith("AA") else "BA")
    else:
        from seed.identity_platform.crypto import new_person_ids

        bad = identity_platform.crypto.encode(new_person_ids(1)[0], LICENSING_AGENCY, 1)
    session.execute(table.update().where(table.c.pk == 5).values(holder_code=bad))
    session.commit()
    before = _snapshot(identity_platform, session, table)

    with pytest.raises(KeyRotationAborted) as raised:
        rotate_keys(session, identity_platform, metadata)
    assert raised.value.detail.endswith("nothing was changed.")
    assert bad not in raised.value.detail
    assert _snapshot(identity_platform, session, table) == before
    assert identity_platform.code_for_my_number(LICENSING_AGENCY, numbers[0]) == codes[0]

    # Repaired, the next rotation uses the version the aborted one prepared.
    session.execute(table.update().where(table.c.pk == 5).values(holder_code=codes[5]))
    session.commit()
    report = rotate_keys(session, identity_platform, metadata)
    assert (report.from_version, report.to_version) == (1, 2)


def test_rotation_command_uses_the_licensing_metadata(app, identity_platform, my_number_factory):
    identity_platform.enrol(my_number_factory())
    result = app.test_cli_runner().invoke(args=["identity-platform", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "master key version 1 -> 2" in result.output
    assert "persons re-encrypted: 1" in result.output
    import_models()
    for table, column in licensing_code_columns(db.Base.metadata):
        assert f"licensing codes re-keyed in {table.name}.{column.name}: 0" in result.output
    status = app.test_cli_runner().invoke(args=["identity-platform", "status"])
    assert status.exit_code == 0
    assert "key version in force: 2" in status.output
    assert "key versions known: 1, 2" in status.output
    assert "persons: 1, certificates: 0" in status.output


def test_rotation_with_environment_keys(tmp_path, database_url, my_number_factory, monkeypatch):
    first = f"1:{new_master_key()}"
    monkeypatch.setenv(ENV_VAR, first)
    config = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": database_url}
    application = create_app(config)
    number = my_number_factory()
    with application.app_context():
        code = get_identity_platform().code_for_my_number(LICENSING_AGENCY, number)
    result = application.test_cli_runner().invoke(args=["identity-platform", "rotate-keys"])
    assert result.exit_code != 0
    assert "identity_key_error" in result.output and ENV_VAR in result.output
    assert "Traceback" not in result.output

    monkeypatch.setenv(ENV_VAR, f"{first},2:{new_master_key()}")
    application = create_app(config)
    result = application.test_cli_runner().invoke(args=["identity-platform", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "master key version 1 -> 2" in result.output
    with application.app_context():
        platform = get_identity_platform()
        rotated = platform.code_for_my_number(LICENSING_AGENCY, number)
        assert rotated.startswith("v2.")
        assert platform.translate(code, LICENSING_AGENCY, LICENSING_AGENCY) == rotated
    # Dropping the version in force is noticed rather than re-enrolling everybody.
    monkeypatch.setenv(ENV_VAR, first)
    with create_app(config).app_context(), pytest.raises(IdentityKeyError):
        get_identity_platform().code_for_my_number(LICENSING_AGENCY, number)


def test_codes_stored_with_the_old_version_during_rotation_are_swept(
    identity_platform, my_number_factory, licensing_like, monkeypatch
):
    metadata, table, pairs, session = licensing_like
    early, late = my_number_factory(), my_number_factory()
    session.execute(
        table.insert(),
        [{"pk": 1, "holder_code": identity_platform.code_for_my_number(LICENSING_AGENCY, early)}],
    )
    session.commit()
    # A writer that got its code before the rotation and stores it in the middle of it.
    late_v1 = identity_platform.code_for_my_number(LICENSING_AGENCY, late)
    real_rewrap = rotation_module._rewrap_people

    def rewrap_while_a_writer_inserts(store, platform, target):
        session.connection().execute(table.insert(), [{"pk": 2, "holder_code": late_v1}])
        return real_rewrap(store, platform, target)

    monkeypatch.setattr(rotation_module, "_rewrap_people", rewrap_while_a_writer_inserts)
    report = rotate_keys(session, identity_platform, metadata)
    assert report.licensing_codes["probe_licences.holder_code"] == 1
    assert report.stragglers == 1
    stored = dict(session.execute(select(table.c.pk, table.c.holder_code)).all())
    assert stored == {
        1: identity_platform.code_for_my_number(LICENSING_AGENCY, early),
        2: identity_platform.code_for_my_number(LICENSING_AGENCY, late),
    }


def test_rekey_codes_heals_old_codes_without_a_new_version(
    app, identity_platform, my_number_factory, licensing_like
):
    metadata, table, pairs, session = licensing_like
    number = my_number_factory()
    old = identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    rotate_keys(session, identity_platform, metadata)
    # As if the licensing commit had been lost after the store committed.
    session.execute(table.insert(), [{"pk": 1, "holder_code": old}, {"pk": 2, "holder_code": None}])
    session.commit()
    assert rotation_module.rekey_codes(session, identity_platform, metadata) == {
        "probe_licences.holder_code": 1,
        "probe_pairs.code": 0,
    }
    assert identity_platform.current_key_version() == 2
    assert session.execute(select(table.c.holder_code).where(table.c.pk == 1)).scalar_one() == (
        identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    )
    assert rotation_module.rekey_codes(session, identity_platform, metadata) == {
        "probe_licences.holder_code": 0,
        "probe_pairs.code": 0,
    }
    result = app.test_cli_runner().invoke(args=["identity-platform", "rekey-codes"])
    assert result.exit_code == 0, result.output
    assert "key version in force: 2" in result.output
