"""Holder pages (/me): sign in with the card (cross-device flow), who checked me, who
monitors me (ending one through monitoring.service), my credentials, sign out. The card
app's two endpoints of the sign-in are in ``card_bp`` (JSON and JWT for a program, no
CSRF: it holds no cookie)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.db import get_session
from core.errors import NotFound
from holder import credentials as holder_credentials
from holder import sessions as holder_sessions
from holder.access_log import access_log
from licensing.professions import PROFESSION_CODES
from monitoring import service as monitoring
from verification.schemas import VerificationIn
from web import browser, card_flow
from web.models import BrowserSessionKind
from web.pages import download, page_blueprint

me_bp = page_blueprint("me", url_prefix="/me")
#: Outside the OpenAPI document: the holder sign-in's shape is the pages' own (see
#: web/card_flow.py), not yet part of the contract.
card_bp = APIBlueprint("card", __name__, enable_openapi=False)
ACCESS_LOG_PAGE = 20
ANSWER_SCHEMA = VerificationIn()


def _holder():
    """The signed-in holder (their holder session row), or None."""
    record = browser.current_session(BrowserSessionKind.HOLDER)
    if record is None or record.holder_session_token is None:
        return None
    return card_flow.holder_for(get_session(), record.holder_session_token)


@me_bp.get("/")
def home():
    holder = _holder()
    if holder is None:
        return render_template("me/sign_in.html")
    cursor = request.args.get("cursor") or None
    page = access_log(get_session(), holder.holder_code, limit=ACCESS_LOG_PAGE, cursor=cursor)
    return render_template(
        "me/home.html",
        page=page,
        monitorings=monitoring.holder_subscriptions(get_session(), holder.holder_code),
        professions=PROFESSION_CODES,
        cursor=cursor,
        portal_id=holder_credentials.HOLDER_PORTAL_ID,
    )


@me_bp.post("/sign-in")
def start_sign_in():
    sign_in = card_flow.start_sign_in(get_session(), browser.browser_secret())
    return redirect(url_for("me.sign_in", sign_in_id=sign_in.id), code=303)


@me_bp.get("/sign-in/<sign_in_id>")
def sign_in(sign_in_id: str):
    session = get_session()
    token = card_flow.take_sign_in(session, sign_in_id, browser.browser_secret())
    if token is not None:
        holder = card_flow.holder_for(session, token)
        if holder is None:
            raise NotFound()
        response = redirect(url_for("me.home"), code=303)
        browser.start_session(
            session,
            response,
            BrowserSessionKind.HOLDER,
            holder_session_token=token,
            expires_at=holder.expires_at,
        )
        return response
    found = card_flow.find_sign_in(session, sign_in_id)
    if found is None:
        raise NotFound(_l("No open sign-in has this id: start a new one on the page."))
    return render_template(
        "me/waiting.html",
        pending=card_flow.open_sign_in(session, sign_in_id),
        rejection=found.rejection,
        request_uri=card_flow.sign_in_request_uri(sign_in_id),
        sign_in_id=sign_in_id,
    )


@me_bp.get("/sign-in/<sign_in_id>/state.json")
def sign_in_state(sign_in_id: str):
    found = card_flow.find_sign_in(get_session(), sign_in_id)
    if found is None or found.claimed_at is not None:
        state = "gone"
    elif found.holder_session_token is not None:
        state = "completed"
    elif found.rejection is not None:
        state = "rejected"
    else:
        state = "pending" if card_flow.open_sign_in(get_session(), sign_in_id) else "expired"
    return jsonify({"state": state})


@me_bp.post("/credentials")
def get_credential():
    holder = _holder()
    if holder is None:
        return redirect(url_for("me.home"), code=303)
    profession = request.form.get("profession", "")
    if profession not in PROFESSION_CODES:
        raise NotFound()
    issued = holder_credentials.issue_credential(
        get_session(),
        holder_code=holder.holder_code,
        card_chain=holder.card_chain,
        profession=profession,
    )
    return download(issued.credential, f"{profession}-credential.sd-jwt", "application/dc+sd-jwt")


def _running_monitoring(holder, subscription_id: str):
    """The holder's own running monitoring with this id (the service's list, no rule of
    our own); another holder's id or an ended one is not found."""
    for subscription in monitoring.holder_subscriptions(get_session(), holder.holder_code):
        if subscription.id == subscription_id:
            return subscription
    raise NotFound(_l("No running monitoring of yours has this id: see the list on your page."))


@me_bp.get("/monitoring/<string(maxlength=32):subscription_id>/end")
def confirm_end_monitoring(subscription_id: str):
    holder = _holder()
    if holder is None:
        return redirect(url_for("me.home"), code=303)
    return render_template(
        "me/end_monitoring.html", subscription=_running_monitoring(holder, subscription_id)
    )


@me_bp.post("/monitoring/<string(maxlength=32):subscription_id>/end")
def end_monitoring(subscription_id: str):
    holder = _holder()
    if holder is None:
        return redirect(url_for("me.home"), code=303)
    # As DELETE /v1/holder/monitoring/{id}: the verifier is told, the access log records it.
    monitoring.end_monitoring_by_holder(get_session(), holder.holder_code, subscription_id)
    return redirect(url_for("me.home"), code=303)


@me_bp.post("/sign-out")
def sign_out():
    session = get_session()
    holder = _holder()
    if holder is not None:
        holder_sessions.sign_out(session, holder)  # as DELETE /v1/holder/sessions
    response = redirect(url_for("me.home"), code=303)
    browser.end_session(session, response)
    return response


# --- the card app's side of the holder sign-in --------------------------------------------


def _open(sign_in_id: str):
    found = card_flow.open_sign_in(get_session(), sign_in_id)
    if found is None:
        raise NotFound(_l("No open sign-in has this id: start a new one on the page."))
    return found


@card_bp.get("/me/r/<string(maxlength=32):sign_in_id>")
def sign_in_request(sign_in_id: str):
    token = card_flow.sign_in_card_request(_open(sign_in_id), _("Sign-in to your licence page"))
    return Response(token, mimetype="application/jwt", headers={"Cache-Control": "no-store"})


@card_bp.post("/me/sign-in/<string(maxlength=32):sign_in_id>/response")
def sign_in_response(sign_in_id: str):
    from core.errors import InvalidRequest, UnsupportedMediaType

    found = _open(sign_in_id)
    if not request.is_json:
        raise UnsupportedMediaType('The body must be JSON: {"assertion": "<JWS>"}.')
    body: Any = request.get_json(silent=True)
    errors = ANSWER_SCHEMA.validate(body) if isinstance(body, dict) else {"_": ["not an object"]}
    if errors:
        raise InvalidRequest('The body must be {"assertion": "<JWS>"}.')
    card_flow.answer_sign_in(get_session(), found, body["assertion"])
    return jsonify({"outcome": "signed_in"})
