"""The verification hot path: (holder code, profession) -> licence, in one query."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import event

from core import db
from licensing import service
from licensing.service import HolderLicence
from tests.fixtures.licensing import random_my_number


def test_licence_for_holder_returns_the_current_licence(app, register_licence):
    my_number = random_my_number()
    doctor = register_licence(
        my_number=my_number, profession="doctor", name="山田 太郎", registered_on=date(2011, 5, 1)
    )
    with app.app_context():
        session = db.get_session()
        found = service.licence_for_holder(session, doctor.holder_code, "doctor")
        assert found == HolderLicence(
            licence_id=doctor.id,
            profession="doctor",
            name="山田 太郎",
            status="active",
            registered_year=2011,
            suspended_until=None,
            changed_at=doctor.updated_at,
        )
        assert service.licence_for_holder(session, doctor.holder_code, "nurse") is None
        assert service.licence_for_holder(session, "not-a-code", "doctor") is None


def test_a_revoked_licence_is_reported_until_a_new_one_is_registered(app, register_licence):
    my_number = random_my_number()
    old = register_licence(my_number=my_number, profession="nurse", registered_on=date(2000, 1, 1))
    with app.app_context():
        session = db.get_session()
        service.revoke_licence(session, None, old.id, reason="misconduct")
        found = service.licence_for_holder(session, old.holder_code, "nurse")
        assert (found.licence_id, found.status) == (old.id, "revoked")
    new = register_licence(my_number=my_number, profession="nurse", registered_on=date(2020, 1, 1))
    with app.app_context():
        session = db.get_session()
        found = service.licence_for_holder(session, old.holder_code, "nurse")
        assert (found.licence_id, found.status, found.registered_year) == (new.id, "active", 2020)


def test_suspension_fields_follow_the_effective_status(app, register_licence):
    licence = register_licence(profession="dentist")
    until = service.today() + timedelta(days=2)
    with app.app_context():
        session = db.get_session()
        service.suspend_licence(session, "r1", licence.id, reason="x", until=until)
        found = service.licence_for_holder(session, licence.holder_code, "dentist")
        assert (found.status, found.suspended_until) == ("suspended", until)
        later = until + timedelta(days=1)
        found = service.licence_for_holder(session, licence.holder_code, "dentist", today=later)
        assert (found.status, found.suspended_until) == ("active", None)


def test_licences_for_holder_lists_one_per_profession(app, register_licence):
    my_number = random_my_number()
    nurse = register_licence(my_number=my_number, profession="nurse")
    midwife = register_licence(my_number=my_number, profession="midwife")
    register_licence(profession="nurse")  # someone else
    with app.app_context():
        session = db.get_session()
        service.revoke_licence(session, None, midwife.id, reason="x")
        found = service.licences_for_holder(session, nurse.holder_code)
        assert [(f.profession, f.status) for f in found] == [
            ("midwife", "revoked"),
            ("nurse", "active"),
        ]


def test_the_lookup_is_one_statement(app, register_licence):
    licence = register_licence()
    statements: list[str] = []
    with app.app_context():
        session = db.get_session()
        engine = session.get_bind()

        def count(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            service.licence_for_holder(session, licence.holder_code, "doctor")
        finally:
            event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "holder_code" in selects[0]


def test_the_lookup_uses_the_holder_index(app, register_licence, is_postgres):
    if is_postgres:
        return  # tiny tables: the planner may rightly prefer a sequential scan
    licence = register_licence()
    with app.app_context():
        session = db.get_session()
        statement = service._LICENCE_FOR_HOLDER.params(
            holder_code=licence.holder_code, profession="doctor"
        ).compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
        plan = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
        detail = " ".join(str(row[-1]) for row in plan)
    assert "uq_licences_holder_code_profession_current" in detail
