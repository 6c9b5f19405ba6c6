"""HR pages (/hr): start a check, follow it to its outcome, the receipt, the history of
the organisation's checks (filters, CSV), and what each rejection means."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from clients.models import Role
from core.db import get_session, utcnow
from core.errors import NotFound
from licensing.professions import PROFESSION_CODES
from licensing.service import JST
from web import card_flow
from web.models import HrCheck
from web.pages import checked_id, download, page_blueprint, staff_required
from web.rejections import EXPLANATIONS
from web.sealing import get_sealer

hr_bp = page_blueprint("hr", url_prefix="/hr")
FINAL_STATES = ("completed", "expired")
HISTORY_PAGE_SIZE = 50
CSV_MAX_ROWS = 10_000
#: A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
OUTCOMES = ("licensed", "not_licensed", "suspended", "revoked", "deceased")
HISTORY_OUTCOMES = (*OUTCOMES, "rejected", "expired")


def _own_check(check_id: str) -> HrCheck:
    """A check of the signed-in staff's organisation; another's is as unknown as none."""
    check = get_session().get(HrCheck, checked_id(check_id))
    if check is None or check.client_id != g.organisation.id:
        raise NotFound()
    return check


def refresh(session: Session, check: HrCheck) -> HrCheck:
    """Copies the challenge's answer into the check while it is not final."""
    if check.state in FINAL_STATES:
        return check
    answer = card_flow.check_state(
        session,
        client_id=check.client_id,
        client_name=g.organisation.name,
        challenge_id=check.challenge_id,
    )
    state = answer["state"]
    if state == check.state and state != "rejected":
        return check
    check.state = state
    if state == "completed":
        body = answer["verification"]
        holder, licence = body.get("holder") or {}, body.get("licence") or {}
        check.outcome = body["outcome"]
        check.holder_name = holder.get("name")
        sealer = get_sealer()
        subject = holder.get("subject")
        check.subject_sealed = sealer.seal(subject)
        check.subject_digest = sealer.digest(subject) if subject else None
        check.licence_status = licence.get("status")
        check.as_of = (body.get("as_of") or {}).get("register")  # the register's last change
        check.verification_id = body["verification_id"]
        check.receipt_sealed = sealer.seal(body["receipt"])
        check.completed_at = utcnow()
    elif state == "rejected":
        check.outcome = (answer["error"] or {}).get("code")
    elif state == "expired":
        check.completed_at = utcnow()
    session.commit()
    return check


@hr_bp.get("/")
@staff_required(Role.VERIFIER)
def home():
    return render_template("hr/home.html", professions=PROFESSION_CODES)


@hr_bp.post("/checks")
@staff_required(Role.VERIFIER)
def start_check():
    profession = request.form.get("profession", "")
    if profession not in PROFESSION_CODES:
        return render_template("hr/home.html", professions=PROFESSION_CODES, error=True), 422
    monitoring = request.form.get("monitoring") == "yes"
    session = get_session()
    started = card_flow.start_check(
        session, client_id=g.organisation.id, profession=profession, monitoring=monitoring
    )
    check = HrCheck(
        id=secrets.token_hex(16),
        client_id=g.organisation.id,
        staff_id=g.staff.id,
        challenge_id=started.challenge_id,
        profession=profession,
        monitoring=monitoring,
        created_at=utcnow(),
        expires_at=started.expires_at,
        state="pending",
    )
    session.add(check)
    session.commit()
    return redirect(url_for("hr.check", check_id=check.id), code=303)


@hr_bp.get("/checks/<check_id>")
@staff_required(Role.VERIFIER)
def check(check_id: str):
    found = refresh(get_session(), _own_check(check_id))
    return render_template(
        "hr/check.html",
        check=found,
        subject=get_sealer().unseal(found.subject_sealed),
        request_uri=card_flow.request_uri(found.challenge_id),
        explanation=EXPLANATIONS.get(found.outcome or found.state),
    )


@hr_bp.get("/checks/<check_id>/state.json")
@staff_required(Role.VERIFIER)
def check_state(check_id: str):
    found = refresh(get_session(), _own_check(check_id))
    return jsonify({"state": found.state, "outcome": found.outcome})


@hr_bp.get("/checks/<check_id>/receipt.jws")
@staff_required(Role.VERIFIER)
def receipt(check_id: str):
    found = _own_check(check_id)
    if found.receipt_sealed is None:
        raise NotFound()
    receipt = get_sealer().unseal(found.receipt_sealed)
    return download(receipt, f"receipt-{found.verification_id}.jws", "application/jose")


@hr_bp.get("/checks/<check_id>/print")
@staff_required(Role.VERIFIER)
def printable(check_id: str):
    found = _own_check(check_id)
    if found.state != "completed":
        raise NotFound()
    return render_template(
        "hr/print.html", check=found, subject=get_sealer().unseal(found.subject_sealed)
    )


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filtered(args: Any) -> tuple[Any, dict[str, Any]]:
    """The organisation's checks matching the history filters (bad values are ignored)."""
    outcome, profession = args.get("outcome"), args.get("profession")
    filters = {
        "from": _day(args.get("from")),
        "to": _day(args.get("to")),
        "outcome": outcome if outcome in HISTORY_OUTCOMES else None,
        "profession": profession if profession in PROFESSION_CODES else None,
        "subject": (args.get("subject") or "").strip()[:200] or None,
    }
    query = select(HrCheck).where(HrCheck.client_id == g.organisation.id)
    if filters["from"]:
        query = query.where(HrCheck.created_at >= datetime.combine(filters["from"], time.min, JST))
    if filters["to"]:
        end = datetime.combine(filters["to"] + timedelta(days=1), time.min, JST)
        query = query.where(HrCheck.created_at < end)
    outcome = filters["outcome"]
    if outcome in ("rejected", "expired"):
        query = query.where(HrCheck.state == outcome)
    elif outcome:
        query = query.where(HrCheck.outcome == outcome, HrCheck.state == "completed")
    if filters["profession"]:
        query = query.where(HrCheck.profession == filters["profession"])
    if filters["subject"]:
        query = query.where(HrCheck.subject_digest == get_sealer().digest(filters["subject"]))
    return query.order_by(HrCheck.created_at.desc(), HrCheck.id.desc()), filters


@hr_bp.get("/history")
@staff_required(Role.VERIFIER)
def history():
    query, filters = _filtered(request.args)
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 10_000))
    rows = list(
        get_session().scalars(
            query.offset((page - 1) * HISTORY_PAGE_SIZE).limit(HISTORY_PAGE_SIZE + 1)
        )
    )
    return render_template(
        "hr/history.html",
        checks=rows[:HISTORY_PAGE_SIZE],
        unseal=get_sealer().unseal,
        more=len(rows) > HISTORY_PAGE_SIZE,
        page=page,
        filters=filters,
        outcomes=HISTORY_OUTCOMES,
        filters_args={k: v for k, v in request.args.items() if k != "page"},
        professions=PROFESSION_CODES,
    )


def spreadsheet_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


@hr_bp.get("/history.csv")
@staff_required(Role.VERIFIER)
def history_csv():
    query, _ = _filtered(request.args)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = (
        "created_at",
        "profession",
        "state",
        "outcome",
        "name",
        "subject",
        "as_of",
        "verification_id",
    )
    writer.writerow(columns)
    unseal = get_sealer().unseal
    for row in get_session().scalars(query.limit(CSV_MAX_ROWS)):
        values = (
            row.created_at.isoformat(),
            row.profession,
            row.state,
            row.outcome,
            row.holder_name,
            unseal(row.subject_sealed),
            row.as_of,
            row.verification_id,
        )
        writer.writerow([spreadsheet_safe(v) for v in values])
    return download(out.getvalue(), "checks.csv", "text/csv")


@hr_bp.get("/rejections/")
def rejections():
    return render_template("hr/rejections.html", explanations=EXPLANATIONS)


@hr_bp.get("/rejections/<code>")
def rejection(code: str):
    explanation = EXPLANATIONS.get(code)
    if explanation is None:
        raise NotFound()
    return render_template("hr/rejection.html", code=code, explanation=explanation)
