"""Small helpers for the licensing tests."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from sqlalchemy import select, text

from core import db
from licensing.models import AuditEntry, LicenceEvent
from tests.fixtures.licensing import new_registration_number, random_my_number


def licence_body(**overrides) -> dict:
    body = {
        "profession": "nurse",
        "my_number": random_my_number(),
        "name": "佐藤 花子",
        "registration_number": new_registration_number(),
        "registered_on": "2015-04-01",
    }
    body.update(overrides)
    return body


def register_via_api(http, headers, **overrides) -> dict:
    response = http.post("/v1/licences", json=licence_body(**overrides), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _detached(rows, columns) -> list[SimpleNamespace]:
    return [SimpleNamespace(**{c: getattr(row, c) for c in columns}) for row in rows]


def stored_events(app, licence_id: str) -> list[SimpleNamespace]:
    """The stored events of a licence (plain copies), oldest first."""
    with app.app_context():
        session = db.get_session()
        rows = session.scalars(
            select(LicenceEvent)
            .where(LicenceEvent.licence_id == licence_id)
            .order_by(LicenceEvent.id)
        )
        return _detached(rows, LicenceEvent.__table__.columns.keys())


def audit_entries(app) -> list[SimpleNamespace]:
    """Every audit entry (plain copies), in chain order."""
    with app.app_context():
        rows = db.get_session().scalars(select(AuditEntry).order_by(AuditEntry.seq))
        return _detached(rows, AuditEntry.__table__.columns.keys())


def iso(day: date) -> str:
    return day.isoformat()


def run_sql(app, statement: str, **params) -> None:
    """Runs raw SQL and commits (to tamper with stored rows as an attacker would)."""
    with app.app_context():
        session = db.get_session()
        session.execute(text(statement), params)
        session.commit()
