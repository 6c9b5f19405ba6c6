"""What every page shares: the blueprint factory (CSRF, headers, HTML error pages), the
start page, the language switch, staff sign-in, set-up and sign-out."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from apiflask import APIBlueprint
from flask import Response, g, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from clients.models import ApiClient, Role
from core.db import get_session, utcnow
from core.errors import Forbidden, NotFound, ServiceError
from web import LANGUAGE_COOKIE, LANGUAGES, browser, labels
from web import staff as staff_accounts
from web.models import BrowserSessionKind, StaffAccount

HERE = Path(__file__).parent
#: A year: the language switch is a preference, not a session.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


def page_blueprint(name: str, url_prefix: str | None = None) -> APIBlueprint:
    """A blueprint of pages: CSRF on every POST, security headers, HTML error pages."""
    bp = APIBlueprint(
        name, __name__, url_prefix=url_prefix, template_folder="templates", enable_openapi=False
    )
    bp.before_request(browser.check_csrf)
    bp.after_request(browser.finish_response)

    @bp.errorhandler(ServiceError)
    def _error_page(error: ServiceError):
        return render_template("error.html", error=error), error.status

    return bp


pages_bp = page_blueprint("pages")
assets_bp = APIBlueprint(
    "assets", __name__, static_folder="static", static_url_path="/assets", enable_openapi=False
)


@pages_bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {
        "csrf_token": browser.csrf_token,
        "csrf_field": browser.CSRF_FIELD,
        "languages": LANGUAGES,
        "qr_svg": qr_svg,
        "when": when,
        "locale": str(get_locale() or LANGUAGES[0]),
        "profession_name": labels.profession_name,
        "outcome_name": labels.outcome_name,
        "action_name": labels.action_name,
    }


_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def checked_id(value: str) -> str:
    """An id or token from a URL: only the characters ours are made of (no NUL or
    control character reaches the database), else 404."""
    if not _ID.fullmatch(value):
        raise NotFound()
    return value


def printable(value: str) -> str:
    """Free text typed in a search box without control or format characters (stored
    names cannot contain them)."""
    return "".join(ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf"))


def qr_svg(data: str, label: str) -> Markup:
    """An inline SVG QR code with an accessible name (no script, no external image)."""
    svg = segno.make(data, error="m").svg_inline(scale=4, border=2, title=label, omitsize=True)
    return Markup(svg.replace("<svg ", '<svg role="img" focusable="false" ', 1))  # noqa: S704 - segno's own markup


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return format_datetime(value, "medium")


# --- start page and language switch ----------------------------------------------------


@pages_bp.get("/")
def index():
    return render_template("index.html")


def safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host, no backslash tricks)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value if value.isascii() and len(value) <= 500 else "/"


@pages_bp.get("/language/<code>")
def switch_language(code: str):
    if code not in LANGUAGES:
        raise NotFound()
    response = redirect(safe_next(request.args.get("next")))
    response.set_cookie(
        LANGUAGE_COOKIE,
        code,
        max_age=LANGUAGE_COOKIE_AGE,
        samesite="Lax",
        secure=request.is_secure,
        httponly=True,
    )
    return response


# --- staff -------------------------------------------------------------------------------


def current_staff() -> tuple[StaffAccount, ApiClient] | None:
    record = browser.current_session(BrowserSessionKind.STAFF)
    if record is None or record.staff_id is None:
        return None
    session = get_session()
    account = session.get(StaffAccount, record.staff_id)
    client = staff_accounts.staff_client(session, account) if account else None
    return (account, client) if account and client else None


def staff_required(role: Role) -> Callable:
    """Signed-in staff of an organisation with ``role``; sets ``g.staff`` and
    ``g.organisation``."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            found = current_staff()
            if found is None:
                return redirect(url_for("pages.sign_in", next=request.path))
            account, client = found
            if client.role is not role:
                raise Forbidden(_l("These pages are for another kind of organisation."))
            g.staff, g.organisation = account, client
            return view(*args, **kwargs)

        return wrapper

    return decorate


@pages_bp.route("/staff/sign-in", methods=["GET", "POST"])
def sign_in():
    error = None
    if request.method == "POST":
        try:
            account = staff_accounts.sign_in(
                get_session(),
                request.form.get("email", ""),
                request.form.get("password", ""),
                request.form.get("code", ""),
            )
        except staff_accounts.SignInFailed as failure:
            error = failure
        else:
            client = staff_accounts.staff_client(get_session(), account)
            home = "/regulator" if client and client.role is Role.REGULATOR else "/hr"
            wanted = request.args.get("next")
            response = redirect(safe_next(wanted) if wanted else home)
            browser.start_session(
                get_session(),
                response,
                BrowserSessionKind.STAFF,
                staff_id=account.id,
                expires_at=browser.staff_session_expiry(utcnow()),
            )
            return response
    status = 401 if error else 200
    return render_template("staff/sign_in.html", error=error), status


@pages_bp.post("/staff/sign-out")
def sign_out():
    response = redirect(url_for("pages.index"))
    browser.end_session(get_session(), response)
    return response


@pages_bp.route("/staff/setup/<token>", methods=["GET", "POST"])
def setup(token: str):
    session = get_session()
    account = staff_accounts.account_for_setup(session, checked_id(token))
    error = None
    if request.method == "POST":
        try:
            staff_accounts.complete_setup(
                session, token, request.form.get("password", ""), request.form.get("code", "")
            )
        except ServiceError as failure:
            error = failure
            account = staff_accounts.account_for_setup(session, token)
        else:
            return render_template("staff/setup_done.html")
    uri = staff_accounts.provisioning_uri(account)
    return render_template("staff/setup.html", account=account, uri=uri, error=error), (
        422 if error else 200
    )


def download(body: str | bytes, filename: str, mimetype: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
