"""Bulk CSV import: row-level errors with line numbers, all-or-nothing vs --skip-invalid,
duplicates within the file and against the register, streaming, the audit entry."""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import func, select

from core import db
from core.audit import console_operator
from licensing import audit
from licensing.importer import import_csv
from licensing.models import Licence, LicenceEvent
from licensing.sample_csv import write_sample_csv
from licensing.service import licence_for_holder
from tests.fixtures.licensing import invalid_check_digit, random_my_number
from tests.licensing.helpers import audit_entries

HEADER = "profession,my_number,name,registration_number,registered_on\n"


def _row(profession="doctor", my_number=None, name="鈴木 一郎", number="1001", day="2010-04-01"):
    return f"{profession},{my_number or random_my_number()},{name},{number},{day}\n"


def _write(tmp_path, text: str, name: str = "licences.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(app, path, *args):
    return app.test_cli_runner().invoke(args=["licences", "import", str(path), *args])


def _count(app, model=Licence) -> int:
    with app.app_context():
        return db.get_session().scalar(select(func.count()).select_from(model))


def test_import_registers_every_row_with_an_event_and_one_audit_entry(app, tmp_path):
    people = [random_my_number() for _ in range(5)]
    text = HEADER + "".join(
        _row(profession=p, my_number=n, number=str(100 + i))
        for i, (p, n) in enumerate(zip(["doctor", "nurse", "dentist", "nurse", "midwife"], people))
    )
    path = _write(tmp_path, text)
    result = _import(app, path)
    assert result.exit_code == 0, result.output
    assert "imported 5 licences; 5 rows read, 0 invalid" in result.output
    assert "rows/s" in result.output
    assert _count(app) == 5
    assert _count(app, LicenceEvent) == 5
    entries = audit_entries(app)
    assert [e.action for e in entries] == ["licences.import"]
    assert entries[0].actor == console_operator()
    assert entries[0].details["imported"] == 5
    assert (
        entries[0].details["file_sha256"]
        == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    )
    with app.app_context():
        session = db.get_session()
        from identity import LICENSING_AGENCY, get_identity_platform

        code = get_identity_platform().code_for_my_number(LICENSING_AGENCY, people[1])
        found = licence_for_holder(session, code, "nurse")
        assert found is not None and found.status == "active" and found.registered_year == 2010
        assert audit.verify_chain(session) is None
        event = session.scalars(select(LicenceEvent)).first()
        assert (event.from_status, event.to_status, event.reason, event.actor) == (
            None,
            "active",
            "imported",
            console_operator(),
        )


def test_errors_name_the_line_and_the_problem_but_never_the_value(app, tmp_path):
    bad_check = invalid_check_digit(random_my_number())
    taken_person = random_my_number()
    lines = [
        _row(number="1"),  # line 2: fine
        _row(my_number=bad_check, number="2"),  # line 3
        _row(profession="astronaut", number="3"),  # line 4
        "doctor,123,x\n",  # line 5: too few fields
        _row(number="123456789"),  # line 6
        _row(profession="dentist", number="1234567"),  # line 7: not a dentist number
        _row(day="2010-02-30", number="7"),  # line 8
        _row(day="2999-01-01", number="8"),  # line 9
        _row(name="", number="9"),  # line 10
        "\n",  # line 11: blank lines are skipped
        _row(number="0001"),  # line 12: the number of line 2 (leading zeros ignored)
        _row(my_number=taken_person, profession="nurse", number="20"),  # line 13
        _row(my_number=taken_person, profession="nurse", number="21"),  # line 14
        _row(my_number="12345678901", number="15"),  # line 15
    ]
    path = _write(tmp_path, HEADER + "".join(lines))
    result = _import(app, path)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 3: my_number fails the check digit",
        "line 4: unknown profession (one of: doctor, dentist, pharmacist, nurse, midwife, "
        "public_health_nurse)",
        "line 5: expected 5 fields, found 3",
        "line 6: registration_number must be 1 to 8 digits (not all zeros)",
        "line 7: registration_number is not in the format for dentist",
        "line 8: registered_on must be a date (YYYY-MM-DD)",
        "line 9: registered_on is in the future",
        "line 10: name is empty",
        "line 12: registration_number repeats line 2 for this profession",
        "line 14: this person already has a licence for this profession on line 13",
        "line 15: my_number must be 12 digits",
    ]
    assert "imported nothing" in result.output
    assert "13 rows read, 11 invalid" in result.output
    assert bad_check not in result.output and taken_person not in result.output
    assert "astronaut" not in result.output
    # All or nothing: not even the valid rows, and no audit entry.
    assert _count(app) == 0
    assert audit_entries(app) == []


def test_skip_invalid_imports_the_valid_rows_and_reports_the_rest(app, tmp_path):
    lines = [
        _row(number="11"),
        _row(my_number=invalid_check_digit(random_my_number()), number="12"),
        _row(number="13"),
        _row(number="11"),
    ]
    result = _import(app, _write(tmp_path, HEADER + "".join(lines)), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "line 3: my_number fails the check digit" in result.output
    assert "line 5: registration_number repeats line 2 for this profession" in result.output
    assert "imported 2 licences; 4 rows read, 2 invalid" in result.output
    assert _count(app) == 2
    assert audit_entries(app)[0].details == {
        "file_sha256": audit_entries(app)[0].details["file_sha256"],
        "rows": 4,
        "imported": 2,
        "unchanged": 0,
        "invalid": 2,
        "skip_invalid": True,
    }


def test_conflicts_with_the_register_and_across_batches_are_reported(
    app, tmp_path, register_licence
):
    person = random_my_number()
    register_licence(profession="doctor", registration_number="500", my_number=random_my_number())
    register_licence(profession="pharmacist", my_number=person)
    lines = [
        _row(number="500"),  # line 2: taken in the register
        _row(profession="pharmacist", my_number=person, number="77"),  # line 3: person licensed
        _row(number="600"),  # line 4
        _row(number="601"),  # line 5
        _row(number="600"),  # line 6: repeats line 4, in a later batch
    ]
    # Staging checks the whole file before writing: line 6 repeats line 4 of this file.
    result = _import(
        app, _write(tmp_path, HEADER + "".join(lines)), "--skip-invalid", "--batch-size", "2"
    )
    assert result.exit_code == 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 2: registration_number is already registered for this profession with other "
        "data (a conflict with the register)",
        "line 3: this person already holds a current licence for this profession",
        "line 6: registration_number repeats line 4 for this profession",
    ]
    assert _count(app) == 4  # two registered before, two imported


def test_the_header_may_list_the_columns_in_any_order_with_a_bom_and_quotes(app, tmp_path):
    my_number = random_my_number()
    text = (
        "\ufeffname,registered_on,profession,registration_number,my_number\r\n"
        f'"Smith, Anne",2001-02-03,nurse,00042,{my_number}\r\n'
    )
    result = _import(app, _write(tmp_path, text))
    assert result.exit_code == 0, result.output
    with app.app_context():
        licence = db.get_session().scalars(select(Licence)).one()
        assert (licence.name, licence.registration_number, licence.profession) == (
            "Smith, Anne",
            "42",
            "nurse",
        )


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "a header row is required"),
        (b"profession,my_number,name\n", "The header row must name exactly"),
        (HEADER.encode() + b"doctor,\x82\xff,x,1,2001-01-01\n", "Line 2 is not valid"),
        (HEADER.encode() + b'doctor,"unterminated\n', "not well-formed CSV"),
    ],
)
def test_unreadable_files_are_one_clear_error(app, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = _import(app, path)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert _count(app) == 0


def test_json_summary_for_benchmarks(app, tmp_path):
    path = tmp_path / "sample.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_sample_csv(out, 300, seed=7)
    result = _import(app, path, "--json", "--batch-size", "64")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["rows"] == summary["imported"] == 300
    assert summary["invalid"] == 0 and summary["committed"] is True
    assert summary["rows_per_second"] > 0
    assert _count(app) == 300


def test_sample_files_with_invalid_rows_fail_as_a_whole(app, tmp_path):
    path = tmp_path / "sample.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_sample_csv(out, 50, seed=3, invalid_every=10)
    result = _import(app, path)
    assert result.exit_code == 1
    assert [
        line.split(":")[0] for line in result.output.splitlines() if line.startswith("line")
    ] == [
        "line 11",
        "line 21",
        "line 31",
        "line 41",
        "line 51",
    ]
    assert _count(app) == 0


def test_import_streams_from_any_binary_stream_without_logging_numbers(app, caplog):
    numbers = [random_my_number() for _ in range(40)]
    text = HEADER + "".join(_row(my_number=n, number=str(1000 + i)) for i, n in enumerate(numbers))
    caplog.set_level(logging.DEBUG)
    seen_errors = []
    with app.app_context():
        result = import_csv(
            db.get_session(),
            io.BytesIO(text.encode()),
            batch_size=7,
            on_error=seen_errors.append,
        )
    assert result.committed and result.imported == 40 and seen_errors == []
    for number in numbers:
        assert number not in caplog.text
