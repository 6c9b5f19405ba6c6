"""Bulk import of licences from CSV: validate and stage the whole file, then write it in
short transactions.

The file has a header row naming the columns ``profession, my_number, name,
registration_number, registered_on`` (any order) and one licence per line, in UTF-8
(with or without BOM) or Shift-JIS/CP932 (Excel's default in Japan): ``encoding``, or
detected from the start of the file. Every invalid row is reported once with its line
number and what is wrong, never with the values themselves (a My Number must not reach
a terminal or a log).

1. **Staging** reads the whole file and checks every row: syntax, the register (a
   registration number taken, a person already licensed; one lookup per batch) and the
   file itself (a number or a person twice). It writes nothing and enrols nobody in the
   identity platform (it only looks people up), so with any invalid row nothing at all
   is imported, unless ``skip_invalid`` is set. The staged rows, My Numbers included,
   stay in memory only.
2. **Writing** takes ``batch_size`` rows per transaction: their codes (the embedded
   platform enrols new people now), a re-check against the register (a licence the API
   registered meanwhile is reported as a conflict), the licences and their events, a
   commit. Verifications interleave between transactions on SQLite and PostgreSQL
   alike. An interrupted import can simply be run again.

A row identical to a licence in the register (same profession and registration number,
person, name and registration date) is "already present, unchanged": re-importing a file
imports nothing twice and succeeds; a row whose number is registered with other data is
a conflict. A completed import is one entry in the audit chain (with the file's SHA-256).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import console_operator
from core.db import utcnow
from core.errors import Conflict
from core.my_number import is_valid_my_number
from core.text import text_problem
from licensing import audit
from licensing.errors import ImportFileError
from licensing.models import CURRENT_SLOT, CURRENT_STATUSES, Licence, LicenceEvent
from licensing.professions import profession_patterns
from licensing.reconcile import state_digest
from licensing.service import JST, NAME_MAX, new_licence_id

COLUMNS = ("profession", "my_number", "name", "registration_number", "registered_on")
DEFAULT_BATCH = 2000
STAGE_BATCH = 5000
SQLITE_IMPORT_CACHE_KIB = 128 * 1024
IMPORT_REASON = "imported"
#: ``encoding`` choices: name -> Python codec (None: detect).
ENCODINGS = {"auto": None, "utf-8": "utf-8", "cp932": "cp932", "shift_jis": "cp932"}
_SNIFF_BYTES = 1 << 16


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
    unchanged: int = 0
    invalid: int = 0
    committed: bool = False
    seconds: float = 0.0
    file_sha256: str = ""
    encoding: str = ""
    #: "checking" while staging, "writing" after; ``to_write`` is known from then on.
    phase: str = "checking"
    to_write: int = 0
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
        unchanged = f"; {self.unchanged} rows already present, unchanged" if self.unchanged else ""
        return (
            f"{outcome}{unchanged}; {self.rows} rows read, {self.invalid} invalid, "
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


def _detect(head: bytes) -> str:
    """UTF-8 when the start of the file decodes as UTF-8, else CP932."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp932"
    return "utf-8"


def _decoded_lines(buffered: io.BufferedReader, codec: str) -> Iterator[str]:
    """The file's lines as text; a line that does not decode is one clear error.

    Splitting the bytes at LF is safe for both encodings: in UTF-8 and CP932 the byte
    0x0A only ever stands for a line feed.
    """
    label = "UTF-8" if codec == "utf-8" else "Shift-JIS (CP932)"
    for number, raw_line in enumerate(buffered, start=1):
        try:
            line = raw_line.decode(codec)
        except UnicodeDecodeError:
            raise ImportFileError(
                f"Line {number} is not valid {label} text: save the file as UTF-8, or give "
                "--encoding (utf-8 or cp932)."
            ) from None
        yield line.removeprefix("\ufeff") if number == 1 else line


@dataclass(slots=True)
class _Row:
    line: int
    profession: str
    my_number: str | None
    name: str
    number: str
    registered_on: date
    holder_code: str | None = None


def _parse_date(value: str) -> date | None:
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _chunks(rows: Sequence[_Row], size: int) -> Iterator[Sequence[_Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class _Importer:
    def __init__(
        self,
        session: Session,
        *,
        actor: str,
        skip_invalid: bool,
        batch_size: int,
        encoding: str,
        on_error: Callable[[RowError], None] | None,
        on_progress: Callable[[ImportResult], None] | None,
    ) -> None:
        from identity import LICENSING_AGENCY, get_identity_platform

        if encoding not in ENCODINGS:
            raise ImportFileError("The encoding must be one of: " + ", ".join(ENCODINGS) + ".")
        self.session = session
        self.actor = actor
        self.skip_invalid = skip_invalid
        self.batch_size = batch_size
        self.codec = ENCODINGS[encoding]
        self.on_error = on_error
        self.on_progress = on_progress
        self.platform = get_identity_platform()
        self.agency = LICENSING_AGENCY
        self.patterns = profession_patterns(session)
        session.rollback()  # the import uses its own connection and transactions
        self.result = ImportResult()
        self.pending_errors: list[RowError] = []
        self.now = utcnow()
        self.today = self.now.astimezone(JST).date()
        self.staged: list[_Row] = []
        # The file's own duplicates: (number, profession) and (person, profession) -> line.
        # A person the platform does not know yet is keyed by an HMAC of the My Number
        # under a key that lives as long as this import (no My Number is kept as a key).
        self.numbers_seen: dict[tuple[str, str], int] = {}
        self.people_seen: dict[tuple[str | bytes, str], int] = {}
        self.person_key = secrets.token_bytes(32)
        self.engine = session.get_bind()
        self.postgres = self.engine.dialect.name == "postgresql"
        self.mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        # Values are converted once here and written with the driver's fastest bulk path
        # (COPY on PostgreSQL, executemany on SQLite): SQLAlchemy's per-row parameter
        # processing would cost more than the inserts themselves.
        licences = Licence.__table__
        self.now_value = _bind(licences.c.created_at, self.engine.dialect, self.now)
        self.date_bind = licences.c.registered_on.type.bind_processor(self.engine.dialect) or (
            lambda d: d
        )

    def _write(self, conn: Connection, table: str, columns: tuple[str, ...], rows: list) -> None:
        if self.postgres:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        marks = ", ".join([self.mark] * len(columns))
        conn.exec_driver_sql(
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

    def progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.result)

    # -- staging: syntax ---------------------------------------------------------------

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
        profession, my_number, raw_name, number, registered = (fields[i].strip() for i in order)
        name = unicodedata.normalize("NFC", raw_name)
        problems: list[str] = []
        pattern = self.patterns.get(profession)
        if pattern is None:
            problems.append("unknown profession (one of: " + ", ".join(self.patterns) + ")")
        if len(my_number) != 12 or not (my_number.isascii() and my_number.isdigit()):
            problems.append("my_number must be 12 digits")
        elif not is_valid_my_number(my_number):
            problems.append("my_number fails the check digit")
        if not name:
            problems.append("name is empty")
        elif len(name) > NAME_MAX:
            problems.append(f"name is longer than {NAME_MAX} characters")
        elif (problem := text_problem(name)) is not None:
            problems.append(f"name {problem}")
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

    # -- staging: the register and the file ---------------------------------------------

    def known_codes(self, rows: Sequence[_Row]) -> None:
        """Each row's holder code if the platform knows the person; enrols nobody."""
        from identity.errors import InvalidMyNumber

        try:
            codes = self.platform.known_codes_for_my_numbers(
                self.agency, [r.my_number or "" for r in rows]
            )
        except InvalidMyNumber as error:
            # The platform disagrees with our check digit: that row is invalid.
            rows[error.position or 0].my_number = None
            return self.known_codes(rows)
        for row, code in zip(rows, codes, strict=True):
            row.holder_code = code

    def _existing(self, conn: Connection, sql: str, values: Iterable[str]) -> list[tuple]:
        values = list(set(values))
        if not values:
            return []
        if self.postgres:  # one array parameter instead of thousands
            result = conn.exec_driver_sql(sql.format(match="= ANY(%s)"), (values,))
        else:
            marks = ", ".join([self.mark] * len(values))
            result = conn.exec_driver_sql(sql.format(match=f"IN ({marks})"), tuple(values))
        return [tuple(row) for row in result]

    def register_conflicts(self, conn: Connection, rows: Sequence[_Row]) -> dict[int, str]:
        """line -> problem for rows that clash with the register; rows identical to a
        licence there get the problem "" (already present, unchanged)."""
        registered = {
            (number, profession): (code, name, str(day))
            for number, profession, code, name, day in self._existing(
                conn,
                "SELECT registration_number, profession, holder_code, name, registered_on "
                "FROM licences WHERE registration_number {match}",
                (r.number for r in rows),
            )
        }
        licensed = {
            (code, profession): number
            for code, profession, status, number in self._existing(
                conn,
                "SELECT holder_code, profession, status, registration_number FROM licences "
                "WHERE holder_code {match}",
                (r.holder_code for r in rows if r.holder_code),
            )
            if status in CURRENT_STATUSES
        }
        found: dict[int, str] = {}
        for row in rows:
            present = registered.get((row.number, row.profession))
            if present == (row.holder_code, row.name, row.registered_on.isoformat()):
                found[row.line] = ""
            elif present is not None:
                found[row.line] = (
                    "registration_number is already registered for this profession "
                    "with other data (a conflict with the register)"
                )
            elif (row.holder_code, row.profession) in licensed:
                found[row.line] = "this person already holds a current licence for this profession"
        return found

    def stage(self, conn: Connection, rows: list[_Row]) -> None:
        valid = [r for r in rows if r.my_number is not None]
        if valid:
            self.known_codes(valid)
        for row in rows:
            if row.my_number is None:
                self.error(row.line, "my_number was rejected by the identity platform")
        rows = [r for r in rows if r.my_number is not None]
        with conn.begin():  # a short read transaction; nothing is written
            conflicts = self.register_conflicts(conn, rows)
        for row in rows:
            problem = conflicts.get(row.line)
            if problem == "":
                self.result.unchanged += 1
                continue
            problems = [problem] if problem else []
            number_key = (row.number, row.profession)
            person_key = (self.person(row), row.profession)
            if number_key in self.numbers_seen:
                problems.append(
                    f"registration_number repeats line {self.numbers_seen[number_key]} "
                    "for this profession"
                )
            if person_key in self.people_seen:
                problems.append(
                    "this person already has a licence for this profession on line "
                    f"{self.people_seen[person_key]}"
                )
            self.numbers_seen.setdefault(number_key, row.line)
            self.people_seen.setdefault(person_key, row.line)
            if problems:
                self.error(row.line, *problems)
            else:
                self.staged.append(row)

    def person(self, row: _Row) -> str | bytes:
        if row.holder_code is not None:
            return row.holder_code
        if row.my_number is None:  # parsing gives every row one or the other
            raise RuntimeError("an import row names no person")
        return hmac.digest(self.person_key, row.my_number.encode(), "sha256")

    # -- writing -------------------------------------------------------------------------

    def write(self, conn: Connection, rows: Sequence[_Row]) -> None:
        codes = self.platform.codes_for_my_numbers(self.agency, [r.my_number or "" for r in rows])
        for row, code in zip(rows, codes, strict=True):
            row.holder_code, row.my_number = code, None
        try:
            with conn.begin():
                # Someone may have registered one of these meanwhile (the API does not wait).
                conflicts = self.register_conflicts(conn, rows)
                kept = []
                for row in rows:
                    if row.line in conflicts:
                        self.error(row.line, conflicts[row.line] or "registered meanwhile")
                    else:
                        kept.append(row)
                self.insert(conn, kept)
        except IntegrityError:
            # Registered between the re-check and the insert: this batch is rolled back.
            raise Conflict(
                "A licence of this file was registered meanwhile; run the import again "
                "(rows already imported are reported as unchanged)."
            ) from None
        self.flush_errors()
        self.progress()

    def insert(self, conn: Connection, rows: list[_Row]) -> None:
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
            digest = state_digest(
                profession=row.profession,
                name=row.name,
                registration_number=row.number,
                registered_on=row.registered_on,
                status="active",
                suspended_until=None,
            )
            event_rows.append((licence_id, "active", IMPORT_REASON, actor, now, digest))
        self._write(conn, Licence.__tablename__, _LICENCE_COLUMNS, licence_rows)
        self._write(conn, LicenceEvent.__tablename__, _EVENT_COLUMNS, event_rows)
        self.result.imported += len(rows)

    # -- the whole file ----------------------------------------------------------------

    def run(self, raw: BinaryIO) -> ImportResult:
        started = time.perf_counter()
        with self.engine.connect() as conn:
            if not self.postgres:
                # A bigger page cache for this connection while the indexes grow (bounded:
                # SQLITE_IMPORT_CACHE_KIB), back to the default before it returns to the pool.
                previous = conn.exec_driver_sql("PRAGMA cache_size").scalar()
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}")
                conn.commit()
            try:
                self._run(conn, raw)
            finally:
                if not self.postgres:
                    conn.rollback()
                    conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
                    conn.commit()
        if self.result.committed:
            audit.record(
                self.session,
                actor=self.actor,
                action="licences.import",
                target="licences",
                details={
                    "file_sha256": self.result.file_sha256,
                    "rows": self.result.rows,
                    "imported": self.result.imported,
                    "unchanged": self.result.unchanged,
                    "invalid": self.result.invalid,
                    "skip_invalid": self.skip_invalid,
                },
            )
            self.session.commit()
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _run(self, conn: Connection, raw: BinaryIO) -> None:
        hashing = _HashingReader(raw)
        buffered = io.BufferedReader(hashing, 1 << 20)
        codec = self.codec or _detect(buffered.peek(_SNIFF_BYTES)[:_SNIFF_BYTES])
        self.result.encoding = codec
        try:
            self._read(conn, _decoded_lines(buffered, codec))
        except csv.Error:
            raise ImportFileError("The file is not well-formed CSV.") from None
        self.result.file_sha256 = hashing.digest.hexdigest()
        if self.result.invalid and not self.skip_invalid:
            return
        self.result.phase, self.result.to_write = "writing", len(self.staged)
        self.progress()
        for rows in _chunks(self.staged, self.batch_size):
            self.write(conn, rows)
        self.staged = []
        self.result.committed = True

    def _read(self, conn: Connection, lines: Iterator[str]) -> None:
        reader = csv.reader(lines, strict=True)
        order = self.check_header(next(reader, None))
        pending: list[_Row] = []
        for line, fields in _numbered(reader):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            self.result.rows += 1
            row = self.parse(line, fields, order)
            if row is not None:
                pending.append(row)
            if len(pending) + len(self.pending_errors) >= STAGE_BATCH:
                self.stage(conn, pending)
                self.flush_errors()
                self.progress()
                pending = []
        self.stage(conn, pending)
        self.flush_errors()


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
_EVENT_COLUMNS = ("licence_id", "to_status", "reason", "actor", "at", "state_digest")


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
    actor: str | None = None,
    skip_invalid: bool = False,
    batch_size: int = DEFAULT_BATCH,
    encoding: str = "auto",
    on_error: Callable[[RowError], None] | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Imports a CSV file (path or binary stream); see the module docstring.

    ``on_error`` is called once per invalid row (in file order) as it is found;
    ``on_progress`` after every batch. Raises ``ImportFileError`` for an unreadable
    file, a line that does not decode or a bad header (nothing imported).
    """
    importer = _Importer(
        session,
        actor=actor or console_operator(),
        skip_invalid=skip_invalid,
        batch_size=max(1, batch_size),
        encoding=encoding,
        on_error=on_error,
        on_progress=on_progress,
    )
    if isinstance(source, str | Path):
        with open(source, "rb") as raw:
            return importer.run(raw)
    return importer.run(source)
