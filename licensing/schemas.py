"""Request and response schemas of the regulator API (they also make ``/openapi.json``).

No output schema has a holder code or a My Number; ``my_number`` is input only.
"""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Date, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from licensing.models import LicenceStatus, Sanction
from licensing.professions import (
    PROFESSION_CODES,
    REGISTRATION_NUMBER_MAX,
    REGISTRATION_NUMBER_SYNTAX,
)

STATUSES = tuple(s.value for s in LicenceStatus)
SANCTIONS = tuple(s.value for s in Sanction)
MAX_PAGE = 200
# Not blank: at least one character that is not white space.
NOT_BLANK = r"^\s*\S"


def _registration_number(**kwargs) -> String:
    return String(
        validate=[
            Length(min=1, max=REGISTRATION_NUMBER_MAX),
            Regexp(REGISTRATION_NUMBER_SYNTAX),
        ],
        **kwargs,
    )


class RegisterLicenceIn(Schema):
    # Not an enum validator: an unknown profession is 422 ``unprocessable`` naming the
    # valid ones (the codes are still documented here).
    profession = String(
        required=True,
        validate=Length(min=1, max=32),
        metadata={
            "description": "one of " + ", ".join(PROFESSION_CODES) + " (otherwise 422 "
            "`unprocessable`, the detail lists them)",
            "example": "nurse",
        },
    )
    my_number = String(
        required=True,
        validate=Length(max=64),
        metadata={
            "description": "12 digits, the last one the check digit (otherwise 422 "
            "`invalid_my_number`). Used once to obtain the licensing agency's code for "
            "the person; never stored, logged or returned.",
            "writeOnly": True,
        },
    )
    name = String(
        required=True,
        validate=[Length(min=1, max=200), Regexp(NOT_BLANK)],
        metadata={
            "description": "NFC-normalised; control characters, bidirectional-text "
            "controls and My Number-like numbers are refused (422 `unprocessable`)"
        },
    )
    registration_number = _registration_number(
        required=True,
        metadata={
            "description": "1 to 8 digits, not all zeros, unique per profession (409 "
            "`conflict`); leading zeros are not significant. Each profession has its own "
            "range (otherwise 422 `unprocessable`): doctor up to 7 significant digits, "
            "nurse up to 8, the others up to 6."
        },
    )
    registered_on = Date(
        required=True,
        metadata={"description": "YYYY-MM-DD, not in the future (otherwise 422 `unprocessable`)"},
    )


class SanctionOut(Schema):
    kind = String(
        required=True, validate=OneOf(SANCTIONS), metadata={"description": "`reprimand` (戒告)"}
    )
    on = Date(required=True, metadata={"description": "the day it was imposed"})
    reason = String(required=True)
    at = DateTime(required=True, metadata={"description": "when it was recorded"})


class LicenceRecordOut(Schema):
    licence_id = String(required=True)
    profession = String(required=True, validate=OneOf(PROFESSION_CODES))
    name = String(required=True, allow_none=True, metadata={"description": "null once erased"})
    registration_number = String(
        required=True,
        allow_none=True,
        metadata={"description": "canonical (no leading zeros); null once erased"},
    )
    registered_on = Date(required=True)
    status = String(
        required=True,
        validate=OneOf(STATUSES),
        metadata={
            "description": "Effective status: a suspension reads as active from the day "
            "after `suspended_until`, with no further action."
        },
    )
    suspended_until = Date(
        required=True,
        allow_none=True,
        metadata={"description": "last day of the suspension (inclusive); null unless suspended"},
    )
    sanctions = List(
        Nested(SanctionOut),
        required=True,
        metadata={"description": "recorded sanctions, oldest first; they leave the status as is"},
    )
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)


class LicenceRecordQuery(Schema):
    # Unknown parameters are rejected by the route (webargs would drop them silently).
    profession = String(validate=OneOf(PROFESSION_CODES))
    status = String(validate=OneOf(STATUSES), metadata={"description": "effective status"})
    registration_number = _registration_number(
        metadata={"description": "exact registration number (leading zeros ignored)"},
    )
    limit = Integer(
        load_default=50,
        validate=Range(min=1, max=MAX_PAGE),
        metadata={"description": f"page size, 1 to {MAX_PAGE} (default 50)"},
    )
    cursor = String(
        validate=Regexp(r"^[0-9]{1,18}$"),
        metadata={"description": "`next_cursor` of the previous page (opaque)"},
    )


class LicenceRecordPageOut(Schema):
    licences = List(Nested(LicenceRecordOut), required=True)
    next_cursor = String(
        required=True,
        allow_none=True,
        metadata={
            "description": "pass as `cursor` (with the same filters) for the next page; "
            "null on the last page. Order: register order, oldest first."
        },
    )


class LicenceReasonIn(Schema):
    reason = String(
        required=True,
        validate=[Length(min=1, max=500), Regexp(NOT_BLANK)],
        metadata={"description": "why (recorded in the history and the audit trail)"},
    )


class LicenceSuspendIn(LicenceReasonIn):
    until = Date(
        required=True,
        metadata={
            "description": "last day of the suspension (inclusive); today or later in Japan "
            "(otherwise 422 `unprocessable`)"
        },
    )


class LicenceReprimandIn(LicenceReasonIn):
    on = Date(
        required=True,
        metadata={
            "description": "the day the reprimand was imposed; not in the future in Japan "
            "(otherwise 422 `unprocessable`)"
        },
    )


class LicenceEventOut(Schema):
    from_status = String(
        required=True, allow_none=True, metadata={"description": "null for the registration"}
    )
    to_status = String(required=True)
    reason = String(required=True)
    until = Date(required=True, allow_none=True)
    actor = String(
        required=True,
        allow_none=True,
        metadata={
            "description": "who acted: the API client's name, or the operator at the "
            "console; null for the service itself (a suspension that ended on its date)"
        },
    )
    at = DateTime(required=True)


class LicenceEventListOut(Schema):
    events = List(Nested(LicenceEventOut), required=True)
