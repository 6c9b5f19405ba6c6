"""The embedded identity platform: a development stand-in for the real one.

It keeps its own store (``IDENTITY_DATABASE_URL``, never the licensing database):
people under a random internal id with their My Number encrypted and blind-indexed,
and card certificates (issuer + serial) registered to people. Unlike the real
platform, which knows every resident, it enrols a My Number the first time it sees
one. See ``crypto`` for the code format and ``keys`` for the master keys.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from typing import TypeVar

from cryptography import x509
from sqlalchemy import Connection, bindparam, event, select, text
from sqlalchemy.dialects import postgresql, sqlite

from core.db import make_engine, utcnow
from identity.errors import (
    CertificateAlreadyRegistered,
    IdentityKeyError,
    InvalidAgencyCode,
    InvalidMyNumber,
)
from seed.identity_platform.crypto import PlatformCrypto, check_agency, new_person_ids
from seed.identity_platform.keys import MasterKeySource, fingerprint
from seed.identity_platform.models import CertificateRegistration, Person, PlatformState
from seed.identity_platform.store import upgrade

T = TypeVar("T")

STATE_ROW = 1
CHUNK = 5_000  # bound parameters per IN (...) and rows per bulk statement
TRANSACTION_ROWS = 50_000  # My Numbers resolved per store transaction in bulk calls
_MAX_SERIAL_HEX = 48
_TWELVE_ASCII_DIGITS = re.compile(r"[0-9]{12}")

_persons = Person.__table__
_certificates = CertificateRegistration.__table__
_state = PlatformState.__table__

_STATE_QUERY = select(_state.c.current_key_version, _state.c.key_fingerprint).where(
    _state.c.id == STATE_ROW
)
_CERTIFICATE_QUERY = (
    select(_persons.c.id, _persons.c.key_version)
    .join(_certificates, _certificates.c.person_id == _persons.c.id)
    .where(
        _certificates.c.issuer_sha256 == bindparam("issuer"),
        _certificates.c.serial == bindparam("serial"),
    )
)
_PERSON_VERSION_QUERY = select(_persons.c.key_version).where(_persons.c.id == bindparam("id"))


def valid_my_number(value: object) -> bool:
    """``core.my_number.is_valid_my_number``, about four times faster (bulk imports).

    Tests hold the two equal on arbitrary input.
    """
    if type(value) is not str or _TWELVE_ASCII_DIGITS.fullmatch(value) is None:
        return False
    d = value.encode("ascii")
    # Weights 6,5,4,3,2,7,6,5,4,3,2 over ASCII codes; 48 * 47 removes the '0' offsets.
    remainder = (
        d[0] * 6 + d[1] * 5 + d[2] * 4 + d[3] * 3 + d[4] * 2 + d[5] * 7
        + d[6] * 6 + d[7] * 5 + d[8] * 4 + d[9] * 3 + d[10] * 2 - 48 * 47
    ) % 11  # fmt: skip
    return (0 if remainder <= 1 else 11 - remainder) == d[11] - 48


def _sqlite_cache(dbapi_connection, _record) -> None:
    # Bulk enrolment inserts into a large random-order index: a bigger page cache
    # (32 MiB per connection, instead of 2) keeps it from re-reading pages, and a
    # longer WAL (about 40 MiB) lets commits rewrite the same pages before a checkpoint.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _created_at_processor(conn: Connection):
    process = _persons.c.created_at.type.bind_processor(conn.dialect)
    return process or (lambda value: value)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def certificate_key(certificate: x509.Certificate) -> tuple[str, str]:
    """(SHA-256 of the DER issuer name, serial in lowercase hex): what a registration keys on."""
    issuer = hashlib.sha256(certificate.issuer.public_bytes()).hexdigest()
    serial = certificate.serial_number
    return issuer, (format(serial, "x") if serial >= 0 else "-" + format(-serial, "x"))


class EmbeddedIdentityPlatform:
    """``identity.IdentityPlatform`` backed by its own store; plus the admin operations
    the card-authority stand-in needs (``enrol``, ``register_certificate``)."""

    def __init__(self, database_url: str, key_source: MasterKeySource) -> None:
        self.database_url = database_url
        self.key_source = key_source
        self.engine = make_engine(database_url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_cache)
        self.crypto = PlatformCrypto(key_source.load)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._verified_versions: set[int] = set()

    # -- set-up ------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Migrates the store, loads the keys and checks they are the store's keys.

        Runs once, on first use, so that building an app touches no file.
        """
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            upgrade(self.database_url)
            keys = self.crypto.reload()
            with self.engine.begin() as conn:
                row = conn.execute(_STATE_QUERY).first()
                if row is None:
                    # A new store adopts the newest key version.
                    version = max(keys)
                    values = {
                        "id": STATE_ROW,
                        "current_key_version": version,
                        "key_fingerprint": fingerprint(keys[version]),
                    }
                    conn.execute(self._insert(_state).on_conflict_do_nothing(), [values])
                    row = conn.execute(_STATE_QUERY).one()
                self._check_current(row.current_key_version, row.key_fingerprint)
            self._ready = True

    def _check_current(self, version: int, expected_fingerprint: str) -> None:
        if version in self._verified_versions:
            return
        if fingerprint(self.crypto.master(version)) != expected_fingerprint:
            raise IdentityKeyError(
                "The master key does not match the identity platform's store "
                f"(key version {version}); restore the right key file or variable."
            )
        self._verified_versions.add(version)

    def _current_version(self, conn: Connection) -> int:
        """The key version in force, read in ``conn``'s transaction.

        On PostgreSQL the row is share-locked, so enrolment waits for a running
        ``rotate-keys`` (which updates the row first) instead of using the old version.
        """
        query = _STATE_QUERY
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        row = conn.execute(query).one()
        self._check_current(row.current_key_version, row.key_fingerprint)
        return row.current_key_version

    def _ensure_version(self, conn: Connection, version: int) -> None:
        if version not in self._verified_versions:
            row = conn.execute(_STATE_QUERY).one()
            if row.current_key_version == version:
                self._check_current(version, row.key_fingerprint)
            else:
                self.crypto.master(version)  # raises when the key is missing

    def _insert(self, table):
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return sqlite.insert(table)
        if dialect == "postgresql":
            return postgresql.insert(table)
        raise NotImplementedError(f"the identity store does not support {dialect}")

    def ping(self) -> str | None:
        """Readiness: None when the store answers and the keys match it."""
        self.ensure_ready()
        with self.engine.connect() as conn:
            self._current_version(conn)
        return None

    def dispose(self) -> None:
        self.engine.dispose()

    # -- people ---------------------------------------------------------------------------

    @staticmethod
    def _validate(my_numbers: Sequence[str]) -> None:
        for position, my_number in enumerate(my_numbers):
            if not valid_my_number(my_number):
                raise InvalidMyNumber(position=position)

    def _resolve(self, my_numbers: Sequence[str], enrol: bool = True) -> list[tuple[str, int]]:
        """(person id, key version) for each number, enrolling unknown ones (without
        ``enrol``, an unknown one is ("", 0))."""
        self._validate(my_numbers)
        self.ensure_ready()
        resolved: list[tuple[str, int]] = []
        # One transaction per block: enrolment is idempotent, and a long import must
        # not hold the store's write lock for minutes.
        for block in chunks(my_numbers, TRANSACTION_ROWS):
            with self.engine.begin() as conn:
                resolved.extend(self._resolve_block(conn, block, enrol))
        return resolved

    # The bulk path talks to the driver directly (executemany, no per-row SQLAlchemy
    # processing): enrolling a million people must take seconds, not minutes.

    def _resolve_block(
        self, conn: Connection, my_numbers: Sequence[str], enrol: bool
    ) -> list[tuple[str, int]]:
        version = self._current_version(conn)
        index = self.crypto.blind_indexer(version)
        indexes = [index(my_number) for my_number in my_numbers]
        by_index = dict(zip(indexes, my_numbers, strict=True))
        found: dict[bytes, tuple[str, int]] = {}
        self._find_people(conn, list(by_index), found)
        missing = [i for i in by_index if i not in found]
        if missing and enrol:
            found.update(self._enrol_missing(conn, version, [(i, by_index[i]) for i in missing]))
        return [found.get(i, ("", 0)) for i in indexes]

    def _enrol_missing(
        self, conn: Connection, version: int, people: Sequence[tuple[bytes, str]]
    ) -> dict[bytes, tuple[str, int]]:
        """Inserts new people; returns blind index -> (id, version) of the stored rows."""
        seal = self.crypto.my_number_sealer(version)
        created = _created_at_processor(conn)(utcnow())
        rows = []
        new: dict[bytes, tuple[str, int]] = {}
        for person_id, (blind_index, my_number) in zip(
            new_person_ids(len(people)), people, strict=True
        ):
            person_hex = person_id.hex()
            rows.append((person_hex, blind_index, seal(person_id, my_number), version, created))
            new[blind_index] = (person_hex, version)
        mark = _placeholder(conn)
        # Only constants and placeholders are interpolated; values are bound.
        sql = (
            f"INSERT INTO {_persons.name} (id, my_number_index, my_number_sealed, key_version, "  # noqa: S608
            f"created_at) VALUES ({', '.join([mark] * 5)}) "
            "ON CONFLICT (my_number_index) DO NOTHING"
        )
        inserted_count = 0
        for block in chunks(rows):
            result = conn.exec_driver_sql(sql, list(block))
            inserted_count += result.rowcount
        if inserted_count == len(rows):
            return new
        # Someone else enrolled some of them meanwhile: theirs stand, read what is stored.
        stored: dict[bytes, tuple[str, int]] = {}
        self._find_people(conn, list(new), stored)
        return stored

    @staticmethod
    def _find_people(
        conn: Connection, indexes: Sequence[bytes], found: dict[bytes, tuple[str, int]]
    ) -> None:
        mark = _placeholder(conn)
        for block in chunks(indexes):
            # Constants and placeholders only; the values are bound.
            sql = (
                f"SELECT my_number_index, id, key_version FROM {_persons.name} "  # noqa: S608
                f"WHERE my_number_index IN ({', '.join([mark] * len(block))})"
            )
            rows = conn.exec_driver_sql(sql, tuple(block))
            found.update({blind_index: (pid, v) for blind_index, pid, v in rows})

    def enrol(self, my_number: str) -> str:
        """The internal id of the person with this My Number (enrolled if new)."""
        return self._resolve([my_number])[0][0]

    def register_certificate(self, certificate: x509.Certificate, my_number: str) -> None:
        """Registers a card certificate to the person with this My Number.

        Idempotent; a renewed or reissued card of the same person maps to the same person
        (so the same codes). A certificate registered to someone else: 409.
        """
        issuer, serial = certificate_key(certificate)
        if len(serial) > _MAX_SERIAL_HEX:
            raise ValueError("certificate serial too long")
        person_id = self.enrol(my_number)
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(_certificates).on_conflict_do_nothing(),
                [
                    {
                        "issuer_sha256": issuer,
                        "serial": serial,
                        "person_id": person_id,
                        "registered_at": utcnow(),
                    }
                ],
            )
            owner = conn.execute(
                select(_certificates.c.person_id).where(
                    _certificates.c.issuer_sha256 == issuer, _certificates.c.serial == serial
                )
            ).scalar_one()
        if owner != person_id:
            raise CertificateAlreadyRegistered()

    # -- IdentityPlatform -----------------------------------------------------------------

    def code_for_my_number(self, agency: str, my_number: str) -> str:
        return self.codes_for_my_numbers(agency, [my_number])[0]

    def codes_for_my_numbers(self, agency: str, my_numbers: Sequence[str]) -> list[str]:
        return self._codes(agency, my_numbers, enrol=True)  # type: ignore[return-value]

    def known_codes_for_my_numbers(
        self, agency: str, my_numbers: Sequence[str]
    ) -> list[str | None]:
        return self._codes(agency, my_numbers, enrol=False)

    def _codes(self, agency: str, my_numbers: Sequence[str], enrol: bool) -> list[str | None]:
        check_agency(agency)
        if isinstance(my_numbers, str):
            raise TypeError("a sequence of My Numbers expected, not one string")
        people = self._resolve(my_numbers, enrol)
        encoders = {}
        codes: list[str | None] = []
        for person_id, version in people:
            if not person_id:
                codes.append(None)
                continue
            encode = encoders.get(version)
            if encode is None:
                encode = encoders[version] = self.crypto.encoder(agency, version)
            codes.append(encode(bytes.fromhex(person_id)))
        return codes

    def code_for_certificate(self, agency: str, certificate: x509.Certificate) -> str | None:
        codes = self.codes_for_certificate(certificate, [agency])
        return None if codes is None else codes[0]

    def codes_for_certificate(
        self, certificate: x509.Certificate, agencies: Sequence[str]
    ) -> list[str] | None:
        if isinstance(agencies, str):
            raise TypeError("a sequence of agencies expected, not one string")
        for agency in agencies:
            check_agency(agency)
        issuer, serial = certificate_key(certificate)
        if len(serial) > _MAX_SERIAL_HEX:
            return None
        self.ensure_ready()
        with self.engine.connect() as conn:
            row = conn.execute(_CERTIFICATE_QUERY, {"issuer": issuer, "serial": serial}).first()
            if row is None:
                return None
            self._ensure_version(conn, row.key_version)
        person_id = bytes.fromhex(row.id)
        return [self.crypto.encode(person_id, agency, row.key_version) for agency in agencies]

    def translate(self, code: str, from_agency: str, to_agency: str) -> str:
        check_agency(to_agency)
        _version, person_id = self.crypto.decode(code, from_agency)
        self.ensure_ready()
        with self.engine.connect() as conn:
            version = conn.execute(_PERSON_VERSION_QUERY, {"id": person_id.hex()}).scalar()
            if version is None:
                raise InvalidAgencyCode()
            self._ensure_version(conn, version)
        # Always the person's current key version, whatever version the input had.
        return self.crypto.encode(person_id, to_agency, version)

    # -- inspection (tests, the status command) --------------------------------------------

    def counts(self) -> dict[str, int]:
        self.ensure_ready()
        with self.engine.connect() as conn:
            return {
                "persons": conn.execute(text("SELECT count(*) FROM identity_persons")).scalar_one(),
                "certificates": conn.execute(
                    text("SELECT count(*) FROM identity_certificates")
                ).scalar_one(),
            }

    def current_key_version(self) -> int:
        self.ensure_ready()
        with self.engine.connect() as conn:
            return self._current_version(conn)
