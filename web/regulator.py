"""Regulator pages (/regulator): search the register, a licence and its history, suspend /
revoke / reinstate with a reason and a confirmation step, CSV import with a progress bar
(web/imports.py runs it in a thread) and its per-line errors, the audit trail and its
verification. Every rule is licensing's: these pages only call ``licensing.service``,
``licensing.importer`` and ``licensing.audit``."""

from __future__ import annotations

from datetime import date

from flask import g, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from clients.models import Role
from core.db import get_session
from core.errors import NotFound, ServiceError, Unprocessable
from core.strict_json import allow_body
from licensing import audit
from licensing import service as licensing
from licensing.models import AuditEntry
from licensing.professions import PROFESSION_CODES, canonical_registration_number
from web import imports
from web.pages import checked_id, page_blueprint, printable, staff_required

regulator_bp = page_blueprint("regulator", url_prefix="/regulator")
STATUSES = ("active", "suspended", "revoked", "erased")
ACTIONS = ("suspend", "revoke", "reinstate")
SEARCH_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
MAX_IMPORT_BYTES = 16 * 1024 * 1024


def _actor() -> str:
    """The regulator staff member, as licensing's audit trail records the actor."""
    return f"staff:{g.staff.id}"


@regulator_bp.get("/")
@staff_required(Role.REGULATOR)
def search():
    args = request.args
    number = (args.get("registration_number") or "").strip()
    name = printable(args.get("name") or "").strip()[:200]
    profession = args.get("profession") if args.get("profession") in PROFESSION_CODES else None
    status = args.get("status") if args.get("status") in STATUSES else None
    searched = any((number, name, profession, status))
    results, bad_number = [], False
    if number and canonical_registration_number(number) is None:
        bad_number, searched = True, False
    if searched:
        page = licensing.find_licences(
            get_session(),
            profession=profession,
            status=status,
            registration_number=number or None,
            name=name or None,
            limit=SEARCH_PAGE_SIZE,
        )
        results = licensing.describe_many(page.licences)
    return render_template(
        "regulator/search.html",
        results=results,
        searched=searched,
        bad_number=bad_number,
        form={
            "registration_number": number,
            "name": name,
            "profession": profession,
            "status": status,
        },
        professions=PROFESSION_CODES,
        statuses=STATUSES,
    )


@regulator_bp.get("/licences/<licence_id>")
@staff_required(Role.REGULATOR)
def licence(licence_id: str):
    session = get_session()
    found = licensing.get_licence(session, checked_id(licence_id))
    return render_template(
        "regulator/licence.html",
        licence=licensing.describe(found),
        events=licensing.licence_events(session, found.id),
        actions=ACTIONS,
    )


@regulator_bp.post("/licences/<licence_id>/<action>")
@staff_required(Role.REGULATOR)
def change(licence_id: str, action: str):
    if action not in ACTIONS:
        raise NotFound()
    session = get_session()
    found = licensing.describe(licensing.get_licence(session, checked_id(licence_id)))
    reason = request.form.get("reason", "")
    until_text = request.form.get("until", "")
    error = None
    until = None
    if action == "suspend":
        try:
            until = date.fromisoformat(until_text)
        except ValueError:
            error = Unprocessable(_l("The suspension needs an end date."))
    if not reason.strip():
        error = Unprocessable(_l("A reason is required."))
    if error is None and request.form.get("confirmed") == "yes":
        try:
            if action == "suspend":
                licensing.suspend_licence(
                    session, _actor(), found.licence_id, reason=reason, until=until
                )
            elif action == "revoke":
                licensing.revoke_licence(session, _actor(), found.licence_id, reason=reason)
            else:
                licensing.reinstate_licence(session, _actor(), found.licence_id, reason=reason)
        except ServiceError as failure:
            session.rollback()
            if failure.status >= 500:
                raise
            error = failure
        else:
            return redirect(url_for("regulator.licence", licence_id=found.licence_id), code=303)
    return render_template(
        "regulator/confirm.html",
        licence=found,
        action=action,
        reason=reason,
        until=until_text,
        error=error,
    ), (422 if error else 200)


@regulator_bp.route("/import", methods=["GET", "POST"])
@allow_body(MAX_IMPORT_BYTES)  # set before the CSRF check reads the form
@staff_required(Role.REGULATOR)
def import_licences():
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise Unprocessable(_l("Choose a CSV file to import."))
        job_id = imports.start(
            upload.stream.read(),
            actor=_actor(),
            skip_invalid=request.form.get("skip_invalid") == "yes",
        )
        return redirect(url_for("regulator.import_progress", job_id=job_id), code=303)
    return render_template("regulator/import.html", job=None)


@regulator_bp.get("/import/<string(length=32):job_id>")
@staff_required(Role.REGULATOR)
def import_progress(job_id: str):
    return render_template(
        "regulator/import.html", job=imports.load(job_id, _actor()), job_id=job_id
    )


@regulator_bp.get("/import/<string(length=32):job_id>/state.json")
@staff_required(Role.REGULATOR)
def import_state(job_id: str):
    state = imports.load(job_id, _actor())
    return jsonify({k: state.get(k) for k in ("state", "phase", "rows", "imported", "to_write")})


@regulator_bp.get("/audit")
@staff_required(Role.REGULATOR)
def audit_trail():
    session = get_session()
    broken_at = audit.verify_chain(session)
    entries = list(
        session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(AUDIT_PAGE_SIZE))
    )
    head = audit.chain_head(session)
    return render_template("regulator/audit.html", broken_at=broken_at, entries=entries, head=head)
