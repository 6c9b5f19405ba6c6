"""CSV import: staged before writing, short transactions, nobody enrolled by a failed
import, re-imports, encodings, progress (14.23, 15.3, 15.8)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from sqlalchemy import func, select

from core import db
from identity import LICENSING_AGENCY
from licensing import cli as licensing_cli
from licensing.importer import ImportResult, import_csv
from licensing.models import Licence
from tests.fixtures.licensing import invalid_check_digit, new_registration_number, random_my_number
from tests.licensing.helpers import audit_entries

HEADER = "profession,my_number,name,registration_number,registered_on\n"


def _rows(people: list[str], names=None) -> str:
    names = names or ["鈴木 一郎"] * len(people)
    return "".join(
        f"nurse,{person},{name},{new_registration_number()},2010-04-01\n"
        for person, name in zip(people, names, strict=True)
    )


def _import(app, path, *args):
    return app.test_cli_runner().invoke(args=["licences", "import", str(path), *args])


def _count(app) -> int:
    with app.app_context():
        return db.get_session().scalar(select(func.count()).select_from(Licence))


def test_a_failed_import_enrols_nobody(app, tmp_path, identity_platform):
    people = [random_my_number() for _ in range(4)]
    path = tmp_path / "bad.csv"
    wrong = invalid_check_digit(random_my_number())
    bad = f"nurse,{wrong},x,{new_registration_number()},2010-04-01\n"
    path.write_text(HEADER + _rows(people) + bad, encoding="utf-8")
    result = _import(app, path)
    assert result.exit_code == 1 and "imported nothing" in result.output
    assert identity_platform.known_codes_for_my_numbers(LICENSING_AGENCY, people) == [None] * 4
    # The same people, once the file is fixed, are enrolled and licensed.
    path.write_text(HEADER + _rows(people), encoding="utf-8")
    assert _import(app, path).exit_code == 0
    assert None not in identity_platform.known_codes_for_my_numbers(LICENSING_AGENCY, people)


def test_reimporting_the_same_file_changes_nothing_and_succeeds(app, tmp_path):
    path = tmp_path / "licences.csv"
    people = [random_my_number() for _ in range(5)]
    path.write_text(HEADER + _rows(people), encoding="utf-8")
    assert _import(app, path).exit_code == 0
    again = _import(app, path)
    assert again.exit_code == 0, again.output
    assert "imported 0 licences; 5 rows already present, unchanged" in again.output
    assert not [line for line in again.output.splitlines() if line.startswith("line ")]
    assert _count(app) == 5
    assert [e.details["unchanged"] for e in audit_entries(app)] == [0, 5]


def test_rows_that_differ_from_the_register_are_conflicts(app, tmp_path):
    people = [random_my_number() for _ in range(2)]
    text = HEADER + _rows(people)
    first = tmp_path / "first.csv"
    first.write_text(text, encoding="utf-8")
    assert _import(app, first).exit_code == 0
    changed = tmp_path / "changed.csv"
    changed.write_text(text.replace("鈴木 一郎", "鈴木 次郎", 1), encoding="utf-8")
    result = _import(app, changed)
    assert result.exit_code == 1
    assert (
        "line 2: registration_number is already registered for this profession with other data"
        in result.output
    )
    assert "imported nothing" in result.output


@pytest.mark.parametrize(
    "encoding,bom,option",
    [
        ("cp932", b"", ()),
        ("cp932", b"", ("--encoding", "cp932")),
        ("utf-8", b"\xef\xbb\xbf", ()),
        ("utf-8", b"", ("--encoding", "utf-8")),
    ],
)
def test_shift_jis_and_utf8_files_import(app, tmp_path, encoding, bom, option):
    people = [random_my_number() for _ in range(2)]
    names = ["髙橋 﨑子", "渡邊 一郎"] if encoding == "cp932" else ["Zoë Ünal", "佐藤 花子"]
    path = tmp_path / "licences.csv"
    path.write_bytes(bom + (HEADER + _rows(people, names)).encode(encoding))
    result = _import(app, path, "--json", *option)
    assert result.exit_code == 0, result.output
    assert f'"encoding": "{encoding}"' in result.output
    with app.app_context():
        stored = sorted(db.get_session().scalars(select(Licence.name)))
    assert stored == sorted(names)


def test_a_decoding_error_names_its_line(app, tmp_path):
    people = [random_my_number() for _ in range(3)]
    lines = (HEADER + _rows(people)).encode("utf-8").split(b"\n")
    lines[2] = lines[2].replace("鈴木".encode(), b"\xff\xfe")
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\n".join(lines))
    result = _import(app, path, "--encoding", "utf-8")
    assert result.exit_code != 0
    assert "Line 3 is not valid UTF-8 text" in result.output and "--encoding" in result.output
    assert _count(app) == 0


def test_hostile_names_in_the_file_are_row_errors(app, tmp_path):
    person = random_my_number()
    path = tmp_path / "hostile.csv"
    path.write_text(
        HEADER
        + _rows([random_my_number()], ["a\x1b[2Jb"])
        + _rows([random_my_number()], [f"see {person[:4]} {person[4:8]} {person[8:]}"]),
        encoding="utf-8",
    )
    result = _import(app, path)
    assert result.exit_code == 1
    assert "line 2: name contains a control character" in result.output
    assert "line 3: name contains a twelve-digit number like a My Number" in result.output
    assert person[:4] not in result.output


def test_progress_is_plain_lines_off_a_terminal(app, tmp_path, monkeypatch):
    monkeypatch.setattr(licensing_cli, "PROGRESS_EVERY", 3)
    path = tmp_path / "licences.csv"
    path.write_text(HEADER + _rows([random_my_number() for _ in range(7)]), encoding="utf-8")
    result = _import(app, path, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "... 4 of 7 licences written (" in result.output and "rows/s, about" in result.output
    assert "... 7 of 7 licences written" in result.output


def test_progress_is_a_bar_on_a_terminal(capsys):
    progress = licensing_cli._ImportProgress(interactive=True)
    progress(ImportResult(rows=10, phase="writing", to_write=10))
    progress(ImportResult(rows=10, imported=5, phase="writing", to_write=10))
    progress(ImportResult(rows=10, imported=10, phase="writing", to_write=10))
    progress.finish()
    assert progress.bar is not None and progress.shown == 10


def test_verifications_and_changes_interleave_with_an_import(app, http, register_licence):
    rows = HEADER + _rows([random_my_number() for _ in range(30)])
    ready_before = http.get("/readyz").status_code
    seen: list[tuple[float, bool, int]] = []

    def on_progress(result: ImportResult) -> None:
        if result.phase != "writing" or not result.imported or seen:
            return
        # Another writer while the import is half way: it must not wait for the file.
        outcome: list[bool] = []

        def concurrent_registration() -> None:
            try:
                register_licence(profession="doctor")
                outcome.append(True)
            except Exception:  # noqa: BLE001 - the assertion below reports it
                outcome.append(False)

        started = time.monotonic()
        thread = threading.Thread(target=concurrent_registration)
        thread.start()
        thread.join(timeout=8)
        seen.append(
            (time.monotonic() - started, outcome == [True], http.get("/readyz").status_code)
        )

    with app.app_context():
        result = import_csv(
            db.get_session(), io.BytesIO(rows.encode()), batch_size=5, on_progress=on_progress
        )
    assert result.committed and result.imported == 30
    (elapsed, ok, ready_during) = seen[0]
    assert ok and elapsed < 5
    assert ready_during == ready_before
    assert _count(app) == 31
