"""The browser side of the pages: session cookies, CSRF tokens, security headers.

A browser session is a 256-bit random token in an HttpOnly, SameSite=Lax cookie (Secure
and ``__Host-`` prefixed behind https); the database keeps its SHA-256 only, so a copy of
the database signs no one in. Staff sessions end after 30 idle minutes or 12 hours;
holder sessions with the holder session they carry (10 minutes).

CSRF: every form carries the value of a random per-browser cookie, compared in constant
time on every POST of a page (double submit). SameSite already stops cross-site POSTs in
current browsers; the token also covers older ones and same-site attackers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import Response, g, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.db import get_session, utcnow
from core.errors import ServiceError
from web.models import BrowserSession, BrowserSessionKind

STAFF_IDLE = timedelta(minutes=30)
STAFF_ABSOLUTE = timedelta(hours=12)
#: last_seen_at is written at most this often (a page view is not a write each time).
TOUCH_EVERY = timedelta(minutes=1)
CSRF_FIELD = "csrf_token"
MAX_COOKIE_CHARS = 100

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class CsrfFailed(ServiceError):
    status, code, title = 400, "csrf_failed", "Form expired"
    default_detail = _l("The form has expired or came from another site: reload and retry.")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _cookie_name(base: str) -> str:
    # __Host- cookies must be Secure, path /, no Domain: only over https.
    return f"__Host-{base}" if request.is_secure else base


def _read_cookie(base: str) -> str | None:
    value = request.cookies.get(_cookie_name(base))
    if not value or len(value) > MAX_COOKIE_CHARS or not value.isascii():
        return None
    return value


def _set_cookie(response: Response, base: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        _cookie_name(base),
        value,
        max_age=max_age,
        httponly=True,
        secure=request.is_secure,
        samesite="Lax",
        path="/",
    )


# --- sessions ---------------------------------------------------------------------------

SESSION_COOKIE = "lv_session"


def start_session(
    session: Session,
    response: Response,
    kind: BrowserSessionKind,
    *,
    expires_at: datetime,
    staff_id: str | None = None,
    holder_session_token: str | None = None,
) -> None:
    """A new browser session (any previous one of this browser is ended first)."""
    _forget_session(session)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        BrowserSession(
            token_hash=token_hash(token),
            kind=kind,
            staff_id=staff_id,
            holder_session_token=holder_session_token,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )
    session.commit()
    _set_cookie(response, SESSION_COOKIE, token, None)


def current_session(kind: BrowserSessionKind) -> BrowserSession | None:
    """This browser's live session of ``kind``; idle staff sessions end here."""
    if "browser_session" in g:
        record = g.browser_session
        return record if record is not None and record.kind is kind else None
    g.browser_session = None
    token = _read_cookie(SESSION_COOKIE)
    if token is None:
        return None
    session = get_session()
    record = session.get(BrowserSession, token_hash(token))
    now = utcnow()
    if record is None:
        return None
    idle_limit = STAFF_IDLE if record.kind is BrowserSessionKind.STAFF else None
    if record.expires_at <= now or (idle_limit and record.last_seen_at + idle_limit <= now):
        session.delete(record)
        session.commit()
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
        session.commit()
    g.browser_session = record
    return record if record.kind is kind else None


def _forget_session(session: Session) -> None:
    token = _read_cookie(SESSION_COOKIE)
    if token is not None:
        ended = delete(BrowserSession).where(BrowserSession.token_hash == token_hash(token))
        session.execute(ended)
        session.commit()


def end_session(session: Session, response: Response) -> None:
    _forget_session(session)
    response.delete_cookie(
        _cookie_name(SESSION_COOKIE),
        path="/",
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",
    )


def staff_session_expiry(now: datetime) -> datetime:
    return now + STAFF_ABSOLUTE


# --- a browser's own secret (binds a holder sign-in to the browser that started it) ----

BROWSER_COOKIE = "lv_browser"


def browser_secret() -> str:
    """This browser's random secret, made on first use (set by ``finish_response``)."""
    if "browser_secret" not in g:
        g.browser_secret = _read_cookie(BROWSER_COOKIE) or secrets.token_urlsafe(32)
    return g.browser_secret


# --- CSRF -------------------------------------------------------------------------------

CSRF_COOKIE = "lv_csrf"


def csrf_token() -> str:
    if "csrf_token" not in g:
        g.csrf_token = _read_cookie(CSRF_COOKIE) or secrets.token_urlsafe(32)
    return g.csrf_token


def check_csrf() -> None:
    """Before every POST of a page."""
    if request.method != "POST":
        return
    cookie = _read_cookie(CSRF_COOKIE)
    sent = request.form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode("utf-8", "replace")):
        raise CsrfFailed()


def finish_response(response: Response) -> Response:
    """Cookies made during the request, and the pages' security headers."""
    if "csrf_token" in g and _read_cookie(CSRF_COOKIE) != g.csrf_token:
        _set_cookie(response, CSRF_COOKIE, g.csrf_token, None)
    if "browser_secret" in g and _read_cookie(BROWSER_COOKIE) != g.browser_secret:
        _set_cookie(response, BROWSER_COOKIE, g.browser_secret, None)
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return response
