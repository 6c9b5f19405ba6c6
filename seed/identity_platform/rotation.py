"""Master key rotation: a new key version, with nobody lost.

1. Pick the target version: a version the key source has but the store does not use
   yet (an interrupted rotation, or a key an operator appended to
   ``IDENTITY_MASTER_KEY``), otherwise a fresh version appended to the key file.
2. In one licensing-database transaction, rewrite every stored licensing code (each
   column of the metadata whose ``Column.info`` has ``{"agency_code": "licensing"}``)
   to the target version. A code that does not decode, or whose person the platform
   does not know, aborts the rotation with nothing changed.
3. In one identity-store transaction (which first takes the state row, so enrolments
   wait), re-encrypt every My Number and recompute its blind index under the target
   version, and make the target version current.
4. Commit the store, then the licensing database; then sweep once more for codes that
   writers stored with the old version meanwhile (``rekey_codes``).

Old key versions stay in the key source: codes handed out before (verifiers'
subjects) still decode and translate. Should step 4 fail between the two commits,
``identity-platform rekey-codes`` re-keys what is left. Do not rotate during a bulk
import: a batch whose codes were made before the rotation and stored after it keeps
old-version codes until ``rekey-codes`` runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Column, Connection, MetaData, Table, and_, bindparam, select, tuple_, update
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import ServiceError
from identity import LICENSING_AGENCY
from identity.errors import InvalidAgencyCode
from seed.identity_platform.keys import fingerprint
from seed.identity_platform.models import Person, PlatformState
from seed.identity_platform.platform import CHUNK, STATE_ROW, EmbeddedIdentityPlatform

AGENCY_CODE_INFO_KEY = "agency_code"

_persons = Person.__table__
_state = PlatformState.__table__


class KeyRotationAborted(ServiceError):
    status, code, title = 409, "key_rotation_aborted", "Key rotation aborted"
    default_detail = "The key rotation was aborted; nothing was changed."


@dataclass
class RotationReport:
    from_version: int
    to_version: int
    persons: int = 0
    # "table.column" -> number of codes rewritten
    licensing_codes: dict[str, int] = field(default_factory=dict)
    # codes written with the old version while the rotation ran, re-keyed afterwards
    stragglers: int = 0


def licensing_code_columns(metadata: MetaData) -> list[tuple[Table, Column]]:
    """Every column marked ``info={"agency_code": "licensing"}``."""
    return [
        (table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if column.info.get(AGENCY_CODE_INFO_KEY) == LICENSING_AGENCY
    ]


def _keyset(conn: Connection, table: Table, columns: list[Column], where=None) -> Iterator[list]:
    """Rows of ``table`` (primary key first, then ``columns``) in primary-key order, by pages."""
    pk = list(table.primary_key.columns)
    if not pk:
        raise KeyRotationAborted(f"Table {table.name} has no primary key; nothing was changed.")
    key = tuple_(*pk) if len(pk) > 1 else pk[0]
    last = None
    while True:
        query = select(*pk, *columns).order_by(*pk).limit(CHUNK)
        if where is not None:
            query = query.where(where)
        if last is not None:
            query = query.where(key > (tuple_(*last) if len(pk) > 1 else last[0]))
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][: len(pk)])


def _rekey_column(
    licensing: Connection,
    store: Connection,
    platform: EmbeddedIdentityPlatform,
    table: Table,
    column: Column,
    target: int,
    *,
    only_stale: bool = False,
) -> int:
    pk = list(table.primary_key.columns)
    n_pk = len(pk)
    encode = platform.crypto.encoder(LICENSING_AGENCY, target)
    statement = (
        update(table)
        .where(and_(*(c == bindparam(f"pk_{i}") for i, c in enumerate(pk))))
        .values({column.name: bindparam("new_code")})
    )
    rewritten = 0
    stale = column.is_not(None) & column.not_like(f"v{target}.%") if only_stale else None
    for page in _keyset(licensing, table, [column], stale):
        changes = []
        people = set()
        for row in page:
            code = row[n_pk]
            if code is None:
                continue
            try:
                version, person_id = platform.crypto.decode(code, LICENSING_AGENCY)
            except InvalidAgencyCode:
                raise KeyRotationAborted(
                    f"A code in {table.name}.{column.name} does not decode; nothing was changed."
                ) from None
            people.add(person_id.hex())
            if version != target:
                params = {f"pk_{i}": row[i] for i in range(n_pk)}
                params["new_code"] = encode(person_id)
                changes.append(params)
        known = set(
            store.execute(select(_persons.c.id).where(_persons.c.id.in_(list(people)))).scalars()
        )
        if known != people:
            raise KeyRotationAborted(
                f"A code in {table.name}.{column.name} names a person the identity platform "
                "does not know; nothing was changed."
            )
        if changes:
            licensing.execute(statement, changes)
            rewritten += len(changes)
    return rewritten


def _rewrap_people(store: Connection, platform: EmbeddedIdentityPlatform, target: int) -> int:
    index = platform.crypto.blind_indexer(target)
    seal = platform.crypto.my_number_sealer(target)
    statement = (
        update(_persons)
        .where(_persons.c.id == bindparam("person_id"))
        .values(
            my_number_index=bindparam("new_index"),
            my_number_sealed=bindparam("new_sealed"),
            key_version=bindparam("new_version"),
        )
    )
    rewrapped = 0
    columns = [_persons.c.my_number_sealed, _persons.c.key_version]
    for page in _keyset(store, _persons, columns):
        changes = []
        for person_id_hex, sealed, version in page:
            if version == target:
                continue
            person_id = bytes.fromhex(person_id_hex)
            my_number = platform.crypto.open_my_number(person_id, sealed, version)
            changes.append(
                {
                    "person_id": person_id_hex,
                    "new_index": index(my_number),
                    "new_sealed": seal(person_id, my_number),
                    "new_version": target,
                }
            )
        if changes:
            store.execute(statement, changes)
            rewrapped += len(changes)
    return rewrapped


def rotate_keys(
    session: Session, platform: EmbeddedIdentityPlatform, metadata: MetaData
) -> RotationReport:
    """Rotates to a new master key version; ``session`` is the licensing database's."""
    platform.ensure_ready()
    columns = licensing_code_columns(metadata)
    try:
        with platform.engine.begin() as store:
            # Take the state row first: enrolments and other rotations wait for us.
            store.execute(
                update(_state)
                .where(_state.c.id == STATE_ROW)
                .values(current_key_version=_state.c.current_key_version)
            )
            current = platform._current_version(store)
            known = platform.crypto.reload()
            target = max(known)
            if target <= current:
                target = platform.key_source.add_version()
                known = platform.crypto.reload()
            report = RotationReport(from_version=current, to_version=target)

            licensing = session.connection()
            for table, column in columns:
                report.licensing_codes[f"{table.name}.{column.name}"] = _rekey_column(
                    licensing, store, platform, table, column, target
                )
            report.persons = _rewrap_people(store, platform, target)
            store.execute(
                update(_state)
                .where(_state.c.id == STATE_ROW)
                .values(
                    current_key_version=target,
                    key_fingerprint=fingerprint(known[target]),
                    rotated_at=utcnow(),
                )
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    platform._verified_versions.add(target)
    # A writer that got its code just before the store committed may have stored it
    # after the licensing pass: sweep once more now that the new version is in force.
    report.stragglers = sum(rekey_codes(session, platform, metadata).values())
    return report


def rekey_codes(
    session: Session, platform: EmbeddedIdentityPlatform, metadata: MetaData
) -> dict[str, int]:
    """Re-keys stored licensing codes that are not at the version in force (no new key).

    Heals a rotation interrupted between its two commits, and codes that writers stored
    with the old version while a rotation ran. One licensing transaction.
    """
    platform.ensure_ready()
    counts: dict[str, int] = {}
    try:
        with platform.engine.connect() as store:
            target = platform._current_version(store)
            licensing = session.connection()
            for table, column in licensing_code_columns(metadata):
                counts[f"{table.name}.{column.name}"] = _rekey_column(
                    licensing, store, platform, table, column, target, only_stale=True
                )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return counts
