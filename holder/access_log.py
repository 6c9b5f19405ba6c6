"""The holder's record of who checked their licence (like the My Number portal's
record of information provision), newest first, with keyset pagination.

Entries are the verification domain's access records for this holder's licensing
agency code: verifications, presentations checked online, and rejected attempts made
with the holder's card (``outcome`` is then the rejection's code). The holder code
comes from the authenticated session only, so one holder can never name another's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core import jws
from core.errors import InvalidRequest
from verification.models import AccessRecord

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class AccessLogPage:
    entries: list[AccessRecord]
    next_cursor: str | None


def _encode_cursor(record: AccessRecord) -> str:
    raw = json.dumps([record.at.isoformat(), record.id], separators=(",", ":"))
    return jws.b64url_encode(raw.encode("ascii"))


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, record_id = json.loads(jws.b64url_decode(cursor))
        moment = datetime.fromisoformat(at)
    except (jws.JwsError, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("The cursor is not valid.") from None
    if moment.tzinfo is None or not isinstance(record_id, str) or len(record_id) > 32:
        raise InvalidRequest("The cursor is not valid.")
    return moment, record_id


def access_log(
    session: Session, holder_code: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> AccessLogPage:
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = select(AccessRecord).where(AccessRecord.holder_code == holder_code)
    if cursor:
        at, record_id = _decode_cursor(cursor)
        query = query.where(
            or_(AccessRecord.at < at, and_(AccessRecord.at == at, AccessRecord.id < record_id))
        )
    rows = list(
        session.scalars(
            query.order_by(AccessRecord.at.desc(), AccessRecord.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return AccessLogPage(rows, _encode_cursor(rows[-1]) if more and rows else None)
