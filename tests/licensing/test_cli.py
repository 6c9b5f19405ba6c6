"""Regulators at the console: ``flask licences register|show|suspend|reinstate|revoke|erase``."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from core import db
from core.audit import console_operator
from licensing.models import Profession
from licensing.professions import PROFESSION_CODES
from licensing.service import today
from tests.fixtures.licensing import invalid_check_digit, random_my_number
from tests.licensing.helpers import audit_entries, stored_events


def _cli(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def _register(app, my_number, number="8080", profession="nurse"):
    return _cli(
        app,
        "licences",
        "register",
        "--profession",
        profession,
        "--name",
        "田中 恵",
        "--registration-number",
        number,
        "--registered-on",
        "2012-04-01",
        input=f"{my_number}\n",
    )


def test_register_prompts_for_the_my_number_without_echoing_it(app):
    my_number = random_my_number()
    result = _register(app, my_number)
    assert result.exit_code == 0, result.output
    assert my_number not in result.output
    licence_id = re.search(r"licence (lic_\w+)", result.output).group(1)
    assert "status:              active" in result.output
    assert "registration number: 8080" in result.output
    assert [e.actor for e in stored_events(app, licence_id)] == [console_operator()]
    assert audit_entries(app)[0].actor == console_operator()


def test_register_errors_are_one_line_without_the_number(app):
    bad = invalid_check_digit(random_my_number())
    result = _register(app, bad)
    assert result.exit_code != 0
    assert "invalid_my_number" in result.output
    assert bad not in result.output
    assert "Traceback" not in result.output

    first = _register(app, random_my_number(), number="99")
    assert first.exit_code == 0
    duplicate = _register(app, random_my_number(), number="99")
    assert duplicate.exit_code != 0 and "conflict:" in duplicate.output


def test_lifecycle_at_the_console(app):
    registered = _register(app, random_my_number(), number="4321", profession="doctor")
    licence_id = re.search(r"licence (lic_\w+)", registered.output).group(1)
    until = (today() + timedelta(days=10)).isoformat()

    suspended = _cli(
        app, "licences", "suspend", licence_id, "--until", until, "--reason", "inquiry"
    )
    assert suspended.exit_code == 0, suspended.output
    assert f"suspended through {until}" in suspended.output
    illegal = _cli(app, "licences", "suspend", licence_id, "--until", "2000-01-01", "--reason", "x")
    assert illegal.exit_code != 0 and "unprocessable" in illegal.output
    reinstated = _cli(app, "licences", "reinstate", licence_id, "--reason", "cleared")
    assert reinstated.exit_code == 0 and "status:              active" in reinstated.output
    again = _cli(app, "licences", "reinstate", licence_id, "--reason", "twice")
    assert again.exit_code != 0
    assert "invalid_transition" in again.output
    revoked = _cli(app, "licences", "revoke", licence_id, "--reason", "struck off")
    assert revoked.exit_code == 0 and "status:              revoked" in revoked.output

    shown = _cli(app, "licences", "show", licence_id)
    assert shown.exit_code == 0
    assert "- -> active" in shown.output
    assert (
        "active -> suspended" in shown.output
        and f"by {console_operator()}: inquiry" in shown.output
    )
    assert "suspended -> active" in shown.output and "active -> revoked" in shown.output
    by_number = _cli(
        app, "licences", "show", "--registration-number", "4321", "--profession", "doctor"
    )
    assert by_number.exit_code == 0 and licence_id in by_number.output

    erased = _cli(app, "licences", "erase", licence_id, "--reason", "registered in error")
    assert erased.exit_code == 0
    assert "name:                (erased)" in erased.output
    assert [e.action for e in audit_entries(app)] == [
        "licence.register",
        "licence.suspend",
        "licence.reinstate",
        "licence.revoke",
        "licence.erase",
    ]
    assert _cli(app, "audit", "verify").exit_code == 0


def test_unknown_licences_are_a_clear_error(app):
    for args in (
        ("show", "lic_missing"),
        ("revoke", "lic_missing", "--reason", "x"),
        ("show", "--registration-number", "1", "--profession", "doctor"),
    ):
        result = _cli(app, "licences", *args)
        assert result.exit_code != 0
        assert "not_found" in result.output
    usage = _cli(app, "licences", "show")
    assert usage.exit_code != 0


def test_professions_are_reference_data_matching_the_api_enum(app):
    with app.app_context():
        rows = [
            (p.code, p.name_ja, p.name_en, p.registration_number_pattern)
            for p in db.get_session().scalars(select(Profession))
        ]
    assert {code for code, *_ in rows} == set(PROFESSION_CODES)
    assert all(all(row) for row in rows)
    assert Profession.__table__.info["reference_data"] is True
