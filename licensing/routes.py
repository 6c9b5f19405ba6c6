"""The regulator API (role ``regulator`` only): register, look up, list, change status."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import request

from clients.auth import client_auth, current_client
from core.db import get_session
from core.errors import InvalidRequest
from licensing import service
from licensing.schemas import (
    LicenceEventListOut,
    LicenceReasonIn,
    LicenceRecordOut,
    LicenceRecordPageOut,
    LicenceRecordQuery,
    LicenceReprimandIn,
    LicenceSuspendIn,
    RegisterLicenceIn,
)

bp = APIBlueprint("licensing", __name__, tag="Licences (regulator)")

_REGULATOR = ["regulator"]
_QUERY_KEYS = frozenset(LicenceRecordQuery().fields)
_FORBIDDEN = {
    403: "The client's role is not `regulator`, or the regulator is scoped to other "
    "professions (`forbidden`)"
}
_NOT_FOUND = {**_FORBIDDEN, 404: "No such licence (`not_found`)"}
_TRANSITION = {
    **_FORBIDDEN,
    400: "Invalid or missing fields (`invalid_request`)",
    404: "No such licence (`not_found`)",
    409: "The licence's status does not allow this change (`invalid_transition`; the "
    "detail names the current status), or it changed at the same moment (`conflict`)",
    422: "Suspension end date in the past, or a reason with control characters or a "
    "My Number-like number (`unprocessable`)",
}


_LAST_ROW = 2**31 - 1


def _encode_cursor(after: int) -> str:
    return str(after)


@bp.post("/v1/licences")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(RegisterLicenceIn, arg_name="body")
@bp.output(LicenceRecordOut, status_code=201)
@bp.doc(
    summary="Register a licence",
    description="The My Number is used once to obtain the licensing agency's code for the "
    "person; it is never stored, logged or returned. One current licence per person and "
    "profession; a registration number once per profession.",
    responses={
        **_FORBIDDEN,
        201: "Registered (status `active`)",
        400: "Invalid or missing fields (`invalid_request`)",
        409: "Registration number already registered for the profession, or the person "
        "already holds a current licence for it (`conflict`)",
        422: "The My Number is not 12 digits with a valid check digit "
        "(`invalid_my_number`); an unknown profession (the detail lists them), a "
        "registration number not in the profession's format, a registration date in the "
        "future, or a name with control characters or a My Number-like number "
        "(`unprocessable`)",
    },
)
def register(body):
    session = get_session()
    licence = service.register_licence(
        session,
        current_client(),
        profession=body["profession"],
        my_number=body["my_number"],
        name=body["name"],
        registration_number=body["registration_number"],
        registered_on=body["registered_on"],
    )
    return service.describe(licence)


@bp.get("/v1/licences")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceRecordQuery, location="query", arg_name="query")
@bp.output(LicenceRecordPageOut)
@bp.doc(
    summary="Search and list licences",
    description="Filters combine (AND). Search by `registration_number` (with or without "
    "`profession`); list by `profession` and/or effective `status`. Register order, "
    "oldest first, paginated with `limit` and `cursor`.",
    responses={
        **_FORBIDDEN,
        400: "Invalid or unknown filters, or a bad cursor (`invalid_request`)",
    },
)
def list_licences(query):
    if not set(request.args) <= _QUERY_KEYS:
        # A misspelt filter (``?statu=active``) is an error, not a silent "everything".
        raise InvalidRequest(
            "Unknown query parameter; the parameters are " + ", ".join(sorted(_QUERY_KEYS)) + "."
        )
    # Row numbers are 32-bit: a larger cursor is past every row (an empty last page), never
    # a value the database refuses.
    after = min(int(query["cursor"]), _LAST_ROW) if query.get("cursor") else None
    day = service.today()
    page = service.find_licences(
        get_session(),
        profession=query.get("profession"),
        status=query.get("status"),
        registration_number=query.get("registration_number"),
        after=after,
        limit=query["limit"],
        day=day,
        actor=current_client(),
    )
    return {
        "licences": service.describe_many(page.licences, day),
        "next_cursor": _encode_cursor(page.next_after) if page.next_after is not None else None,
    }


@bp.get("/v1/licences/<string(maxlength=64):licence_id>")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.output(LicenceRecordOut)
@bp.doc(summary="A licence", responses=_NOT_FOUND)
def get_licence(licence_id: str):
    return service.describe(service.get_licence(get_session(), licence_id, current_client()))


@bp.get("/v1/licences/<string(maxlength=64):licence_id>/events")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.output(LicenceEventListOut)
@bp.doc(
    summary="A licence's status history, oldest first",
    description="Each event: who (`actor`), when (`at`), why (`reason`). A suspension "
    "that ended on its date shows as an event by the service itself (`actor` null).",
    responses=_NOT_FOUND,
)
def licence_events(licence_id: str):
    return {"events": service.licence_events(get_session(), licence_id, actor=current_client())}


@bp.post("/v1/licences/<string(maxlength=64):licence_id>/suspend")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceSuspendIn, arg_name="body")
@bp.output(LicenceRecordOut)
@bp.doc(
    summary="Suspend a licence through a date (inclusive)",
    description="From `active`, or from `suspended` to set a new end date. The suspension "
    "lifts itself after `until`. Takes effect on the very next verification.",
    responses=_TRANSITION,
)
def suspend(licence_id: str, body):
    licence = service.suspend_licence(
        get_session(), current_client(), licence_id, reason=body["reason"], until=body["until"]
    )
    return service.describe(licence)


@bp.post("/v1/licences/<string(maxlength=64):licence_id>/reinstate")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceReasonIn, arg_name="body")
@bp.output(LicenceRecordOut)
@bp.doc(summary="Reinstate a suspended licence", responses=_TRANSITION)
def reinstate(licence_id: str, body):
    licence = service.reinstate_licence(
        get_session(), current_client(), licence_id, reason=body["reason"]
    )
    return service.describe(licence)


@bp.post("/v1/licences/<string(maxlength=64):licence_id>/revoke")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceReasonIn, arg_name="body")
@bp.output(LicenceRecordOut)
@bp.doc(summary="Revoke a licence (terminal)", responses=_TRANSITION)
def revoke(licence_id: str, body):
    licence = service.revoke_licence(
        get_session(), current_client(), licence_id, reason=body["reason"]
    )
    return service.describe(licence)


@bp.post("/v1/licences/<string(maxlength=64):licence_id>/deceased")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceReasonIn, arg_name="body")
@bp.output(LicenceRecordOut)
@bp.doc(
    summary="Record the holder's death (terminal)",
    description="From active or suspended. Verifications answer `deceased`; the holder's "
    "credentials read as invalid in the status lists.",
    responses=_TRANSITION,
)
def deceased(licence_id: str, body):
    licence = service.record_deceased(
        get_session(), current_client(), licence_id, reason=body["reason"]
    )
    return service.describe(licence)


@bp.post("/v1/licences/<string(maxlength=64):licence_id>/reprimands")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceReprimandIn, arg_name="body")
@bp.output(LicenceRecordOut, status_code=201)
@bp.doc(
    summary="Record a reprimand (戒告)",
    description="From active or suspended; the status stays as it is and the reprimand "
    "is listed in `sanctions`.",
    responses={**_TRANSITION, 201: "Recorded (the licence, with its `sanctions`)"},
)
def reprimand(licence_id: str, body):
    licence = service.record_reprimand(
        get_session(), current_client(), licence_id, reason=body["reason"], on=body["on"]
    )
    return service.describe(licence)


@bp.post("/v1/licences/<string(maxlength=64):licence_id>/erase")
@bp.auth_required(client_auth, roles=_REGULATOR)
@bp.input(LicenceReasonIn, arg_name="body")
@bp.output(LicenceRecordOut)
@bp.doc(
    summary="Erase a licence's personal data (terminal)",
    description="For a licence registered in error or a lawful erasure: the link to the "
    "person, the name and the registration number are removed (the number may be "
    "registered again); the licence id, profession, dates and history remain, and "
    "verifications find no licence. Allowed from active, suspended, revoked and deceased.",
    responses=_TRANSITION,
)
def erase(licence_id: str, body):
    licence = service.erase_licence(
        get_session(), current_client(), licence_id, reason=body["reason"]
    )
    return service.describe(licence)
