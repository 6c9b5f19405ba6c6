"""The embedded platform's store on PostgreSQL (runs when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os

import pytest
from alembic import command
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.orm import Session

from core import db
from identity import LICENSING_AGENCY, verifier_agency
from identity.errors import InvalidAgencyCode
from seed.identity_platform import alembic_config, create_platform
from seed.identity_platform.rotation import rotate_keys
from tests.quality.schema_check import scratch_database
from tests.seed.identity_platform.threads import run_in_threads

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL (PostgreSQL)"
)


@pytest.fixture
def pg_platform(tmp_path):
    with scratch_database() as url:
        platform = create_platform(
            {"IDENTITY_DATABASE_URL": url, "IDENTITY_MASTER_KEY_FILE": str(tmp_path / "k.json")}
        )
        yield platform
        platform.dispose()


def test_store_migrates_and_matches_models(pg_platform):
    pg_platform.ensure_ready()
    assert pg_platform.engine.dialect.name == "postgresql"
    command.check(alembic_config(pg_platform.database_url))


def test_codes_bulk_certificates_and_translation(
    pg_platform, my_number_factory, certificate_factory
):
    numbers = [my_number_factory() for _ in range(300)]
    codes = pg_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers + numbers[:10])
    assert codes[300:] == codes[:10]
    assert codes[:300] == [pg_platform.code_for_my_number(LICENSING_AGENCY, n) for n in numbers]
    card = certificate_factory()
    pg_platform.register_certificate(card, numbers[7])
    assert pg_platform.code_for_certificate(LICENSING_AGENCY, card) == codes[7]
    subject = pg_platform.translate(codes[7], LICENSING_AGENCY, verifier_agency("a"))
    assert pg_platform.translate(subject, verifier_agency("a"), LICENSING_AGENCY) == codes[7]
    with pytest.raises(InvalidAgencyCode):
        pg_platform.translate(subject, verifier_agency("b"), LICENSING_AGENCY)
    assert pg_platform.counts() == {"persons": 300, "certificates": 1}


def test_concurrent_enrolment_enrols_once(pg_platform, my_number_factory):
    numbers = [my_number_factory() for _ in range(200)]
    pg_platform.ensure_ready()
    results, errors = run_in_threads(
        lambda: pg_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    )
    assert not errors
    assert all(r == results[0] for r in results)
    assert pg_platform.counts()["persons"] == 200


def test_rotation(pg_platform, my_number_factory, tmp_path):
    metadata = MetaData()
    table = Table(
        "probe",
        metadata,
        Column("pk", Integer, primary_key=True),
        Column("code", String(200), info={"agency_code": "licensing"}),
    )
    engine = db.make_engine(f"sqlite:///{tmp_path / 'licensing-like.sqlite3'}")
    metadata.create_all(engine)
    numbers = [my_number_factory() for _ in range(50)]
    codes = pg_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    with Session(engine) as session:
        session.execute(table.insert(), [{"pk": i, "code": c} for i, c in enumerate(codes)])
        session.commit()
        report = rotate_keys(session, pg_platform, metadata)
        assert (report.to_version, report.persons) == (2, 50)
        stored = session.execute(select(table.c.code).order_by(table.c.pk)).scalars().all()
    engine.dispose()
    assert stored == pg_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)
    assert all(code.startswith("v2.") for code in stored)
