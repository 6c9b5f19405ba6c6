"""Bulk import of licences from CSV, streaming, in constant memory.

The file has a header row naming the columns ``profession, my_number, name,
registration_number, registered_on`` (any order) and one licence per line. Every row is
validated; each invalid row is reported once with its line number and what is wrong,
never with the values themselves (a My Number must not reach a terminal or a log).

Rows are processed in batches: syntax checks, one bulk identity-platform call for the
batch's My Numbers, two indexed queries for conflicts with the register (which includes
the earlier batches of the same file), then Core ``insert()`` executemany for the
licences and their registration events. The whole file is one transaction: with any
invalid row nothing is imported, unless ``skip_invalid`` is set, in which case the valid
rows are imported and the invalid ones reported. A committed import is one entry in the
audit chain (with the file's SHA-256).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from core.db import utcnow
from core.my_number import is_valid_my_number
from licensing import audit
from licensing.errors import ImportFileError
from licensing.models import CURRENT_SLOT, CURRENT_STATUSES, Licence, LicenceEvent
from licensing.professions import profession_patterns
from licensing.service import (
    CLI_ACTOR,
    JST,
    NAME_MAX,
    new_licence_id,
)

COLUMNS = ("profession", "my_number", "name", "registration_number", "registered_on")
DEFAULT_BATCH = 5000
SQLITE_IMPORT_CACHE_KIB = 128 * 1024
IMPORT_REASON = "imported"


@dataclass(frozen=True)
class RowError:
    line: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.problems)


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    invalid: int = 0
    committed: bool = False
    seconds: float = 0.0
    file_sha256: str = ""
    first_errors: list[RowError] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        outcome = (
            f"imported {self.imported} licences"
            if self.committed
            else "imported nothing (fix the rows above, or use --skip-invalid)"
        )
        return (
            f"{outcome}; {self.rows} rows read, {self.invalid} invalid, "
            f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )


class _HashingReader(io.RawIOBase):
    """Passes bytes through while hashing them (the file's digest for the audit entry)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        return n


@dataclass
class _Row:
    line: int
    profession: str
    my_number: str | None
    name: str
    number: str
    registered_on: date
    holder_code: str = ""


def _parse_date(value: str) -> date | None:
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class _Importer:
    def __init__(
        self,
        session: Session,
        *,
        actor: str,
        skip_invalid: bool,
        batch_size: int,
        on_error: Callable[[RowError], None] | None,
        on_progress: Callable[[ImportResult], None] | None,
    ) -> None:
        from identity import LICENSING_AGENCY, get_identity_platform

        self.session = session
        self.actor = actor
        self.skip_invalid = skip_invalid
        self.batch_size = batch_size
        self.on_error = on_error
        self.on_progress = on_progress
        self.platform = get_identity_platform()
        self.agency = LICENSING_AGENCY
        self.patterns = profession_patterns(session)
        self.result = ImportResult()
        self.pending_errors: list[RowError] = []
        self.now = utcnow()
        self.today = self.now.astimezone(JST).date()
        self.connection = session.connection()
        dialect = self.connection.dialect
        self.postgres = dialect.name == "postgresql"
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # Values are converted once here and written with the driver's fastest bulk path
        # (COPY on PostgreSQL, executemany on SQLite): SQLAlchemy's per-row parameter
        # processing would cost more than the inserts themselves.
        licences = Licence.__table__
        self.now_value = _bind(licences.c.created_at, dialect, self.now)
        self.date_bind = licences.c.registered_on.type.bind_processor(dialect) or (lambda d: d)

    def _write(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if self.postgres:
            raw = self.connection.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        marks = ", ".join([self.mark] * len(columns))
        self.connection.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            rows,
        )

    # -- reporting ---------------------------------------------------------------------

    def error(self, line: int, *problems: str) -> None:
        self.result.invalid += 1
        self.pending_errors.append(RowError(line, tuple(problems)))

    def flush_errors(self) -> None:
        """Reports the batch's errors in line order (a batch's rows are checked in stages)."""
        self.pending_errors.sort(key=lambda error: error.line)
        for error in self.pending_errors:
            if len(self.result.first_errors) < 100:
                self.result.first_errors.append(error)
            if self.on_error is not None:
                self.on_error(error)
        self.pending_errors = []

    # -- step 1: syntax ----------------------------------------------------------------

    def check_header(self, header: list[str] | None) -> list[int]:
        if header is None:
            raise ImportFileError("The file is empty: a header row is required.")
        names = [h.strip().lower() for h in header]
        if sorted(names) != sorted(COLUMNS):
            raise ImportFileError("The header row must name exactly: " + ",".join(COLUMNS) + ".")
        return [names.index(c) for c in COLUMNS]

    def parse(self, line: int, fields: list[str], order: list[int]) -> _Row | None:
        if len(fields) != len(COLUMNS):
            self.error(line, f"expected {len(COLUMNS)} fields, found {len(fields)}")
            return None
        profession, my_number, name, number, registered = (fields[i].strip() for i in order)
        problems: list[str] = []
        pattern = self.patterns.get(profession)
        if pattern is None:
            problems.append("unknown profession")
        if len(my_number) != 12 or not (my_number.isascii() and my_number.isdigit()):
            problems.append("my_number must be 12 digits")
        elif not is_valid_my_number(my_number):
            problems.append("my_number fails the check digit")
        if not name:
            problems.append("name is empty")
        elif len(name) > NAME_MAX:
            problems.append(f"name is longer than {NAME_MAX} characters")
        canonical = (
            number.lstrip("0")
            if 1 <= len(number) <= 8 and number.isascii() and number.isdigit()
            else ""
        )
        if not canonical:
            problems.append("registration_number must be 1 to 8 digits (not all zeros)")
        elif pattern is not None and not pattern.fullmatch(canonical):
            problems.append(f"registration_number is not in the format for {profession}")
        day = _parse_date(registered)
        if day is None:
            problems.append("registered_on must be a date (YYYY-MM-DD)")
        elif day > self.today:
            problems.append("registered_on is in the future")
        if problems:
            self.error(line, *problems)
            return None
        assert day is not None
        return _Row(line, profession, my_number, name, canonical, day)

    # -- steps 2-4: codes, conflicts, insert --------------------------------------------

    def codes(self, rows: list[_Row]) -> list[_Row]:
        from identity.errors import InvalidMyNumber

        numbers = [r.my_number or "" for r in rows]
        try:
            codes = self.platform.codes_for_my_numbers(self.agency, numbers)
        except InvalidMyNumber:
            codes = None  # the platform disagrees with our check: one call per row below
        del numbers
        kept: list[_Row] = []
        if codes is not None:
            for row, code in zip(rows, codes, strict=True):
                row.holder_code, row.my_number = code, None
                kept.append(row)
            return kept
        for row in rows:
            try:
                row.holder_code = self.platform.code_for_my_number(self.agency, row.my_number)
            except InvalidMyNumber:
                self.error(row.line, "my_number was rejected by the identity platform")
                continue
            finally:
                row.my_number = None
            kept.append(row)
        return kept

    def _existing(self, sql: str, values: set[str]) -> list[tuple]:
        if self.postgres:  # one array parameter instead of thousands
            result = self.connection.exec_driver_sql(sql.format(match="= ANY(%s)"), (list(values),))
        else:
            marks = ", ".join([self.mark] * len(values))
            result = self.connection.exec_driver_sql(
                sql.format(match=f"IN ({marks})"), tuple(values)
            )
        return [tuple(row) for row in result]

    def conflicts(self, rows: list[_Row]) -> list[_Row]:
        # Two indexed look-ups per batch (the register includes this file's earlier
        # batches: same transaction).
        taken = set(
            self._existing(
                "SELECT registration_number, profession FROM licences "
                "WHERE registration_number {match}",
                {r.number for r in rows},
            )
        )
        licensed = {
            (code, profession)
            for code, profession, status in self._existing(
                "SELECT holder_code, profession, status FROM licences WHERE holder_code {match}",
                {r.holder_code for r in rows},
            )
            if status in CURRENT_STATUSES
        }
        kept: list[_Row] = []
        batch_numbers: dict[tuple[str, str], int] = {}
        batch_holders: dict[tuple[str, str], int] = {}
        for row in rows:
            problems = []
            number_key = (row.number, row.profession)
            holder_key = (row.holder_code, row.profession)
            if number_key in taken:
                problems.append("registration_number is already registered for this profession")
            elif number_key in batch_numbers:
                problems.append(
                    f"registration_number repeats line {batch_numbers[number_key]} "
                    "for this profession"
                )
            if holder_key in licensed:
                problems.append("this person already holds a current licence for this profession")
            elif holder_key in batch_holders:
                problems.append(
                    f"this person already has a licence for this profession on line "
                    f"{batch_holders[holder_key]}"
                )
            if problems:
                self.error(row.line, *problems)
                continue
            batch_numbers[number_key] = row.line
            batch_holders[holder_key] = row.line
            kept.append(row)
        return kept

    def insert(self, rows: list[_Row]) -> None:
        if not rows:
            return
        now, date_bind, actor = self.now_value, self.date_bind, self.actor
        licence_rows = []
        event_rows = []
        for row in rows:
            licence_id = new_licence_id()
            licence_rows.append(
                (
                    licence_id,
                    row.profession,
                    row.holder_code,
                    row.name,
                    row.number,
                    date_bind(row.registered_on),
                    "active",
                    CURRENT_SLOT,
                    1,
                    now,
                    now,
                )
            )
            event_rows.append((licence_id, "active", IMPORT_REASON, actor, now))
        self._write(Licence.__tablename__, _LICENCE_COLUMNS, licence_rows)
        self._write(LicenceEvent.__tablename__, _EVENT_COLUMNS, event_rows)
        self.result.imported += len(rows)

    def batch(self, rows: list[_Row]) -> None:
        if rows:
            self.insert(self.conflicts(self.codes(rows)))
        self.flush_errors()
        if self.on_progress is not None:
            self.on_progress(self.result)

    # -- the whole file ----------------------------------------------------------------

    def run(self, raw: BinaryIO) -> ImportResult:
        started = time.perf_counter()
        if self.connection.dialect.name == "sqlite":
            # A bigger page cache for this connection while the indexes grow (bounded:
            # SQLITE_IMPORT_CACHE_KIB); the pooled connection gets its default back.
            previous = self.connection.exec_driver_sql("PRAGMA cache_size").scalar()
            self.connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}")
            try:
                return self._run(raw, started)
            finally:
                with contextlib.suppress(Exception):
                    self.session.connection().exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
        return self._run(raw, started)

    def _run(self, raw: BinaryIO, started: float) -> ImportResult:
        hashing = _HashingReader(raw)
        text = io.TextIOWrapper(
            io.BufferedReader(hashing, 1 << 20), encoding="utf-8-sig", newline=""
        )
        try:
            self._read(text)
        except UnicodeDecodeError:
            self.session.rollback()
            raise ImportFileError("The file is not UTF-8 text.") from None
        except csv.Error:
            self.session.rollback()
            raise ImportFileError("The file is not well-formed CSV.") from None
        except BaseException:
            self.session.rollback()
            raise
        self.result.file_sha256 = hashing.digest.hexdigest()
        if self.result.invalid and not self.skip_invalid:
            self.session.rollback()
        else:
            audit.record(
                self.session,
                actor=self.actor,
                action="licences.import",
                target="licences",
                details={
                    "file_sha256": self.result.file_sha256,
                    "rows": self.result.rows,
                    "imported": self.result.imported,
                    "invalid": self.result.invalid,
                    "skip_invalid": self.skip_invalid,
                },
            )
            self.session.commit()
            self.result.committed = True
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _read(self, text: io.TextIOWrapper) -> None:
        reader = csv.reader(text, strict=True)
        order = self.check_header(next(reader, None))
        pending: list[_Row] = []
        for line, fields in _numbered(reader):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            self.result.rows += 1
            row = self.parse(line, fields, order)
            if row is not None:
                pending.append(row)
            if len(pending) + len(self.pending_errors) >= self.batch_size:
                self.batch(pending)
                pending = []
        self.batch(pending)


_LICENCE_COLUMNS = (
    "id",
    "profession",
    "holder_code",
    "name",
    "registration_number",
    "registered_on",
    "status",
    "current_slot",
    "version",
    "created_at",
    "updated_at",
)
_EVENT_COLUMNS = ("licence_id", "to_status", "reason", "actor", "at")


def _bind(column, dialect, value):
    process = column.type.bind_processor(dialect)
    return process(value) if process else value


def _numbered(reader) -> Iterator[tuple[int, list[str]]]:
    """(first physical line of the record, fields); the header is line 1."""
    start = reader.line_num + 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1


def import_csv(
    session: Session,
    source: str | Path | BinaryIO,
    *,
    actor: str = CLI_ACTOR,
    skip_invalid: bool = False,
    batch_size: int = DEFAULT_BATCH,
    on_error: Callable[[RowError], None] | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Imports a CSV file (path or binary stream); see the module docstring.

    ``on_error`` is called once per invalid row (in file order) as it is found;
    ``on_progress`` after every batch. Raises ``ImportFileError`` for an unreadable
    file or a bad header (nothing imported).
    """
    importer = _Importer(
        session,
        actor=actor,
        skip_invalid=skip_invalid,
        batch_size=max(1, batch_size),
        on_error=on_error,
        on_progress=on_progress,
    )
    if isinstance(source, str | Path):
        with open(source, "rb") as raw:
            return importer.run(raw)
    return importer.run(source)
