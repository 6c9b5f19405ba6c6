"""Staff accounts and the browser side of the pages, without a browser: the set-up link,
argon2id, TOTP (no replay), lockout, session limits, cookies, CSRF, CSP, hostile input."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from clients.service import create_client
from core.db import get_session, utcnow
from tests.web.conftest import PASSWORD, next_code
from web.hr import spreadsheet_safe
from web.models import BrowserSession, StaffAccount
from web.pages import safe_next

TEMPLATES = Path(__file__).parents[2] / "web" / "templates"


@pytest.fixture
def http(app):
    return app.test_client()


def _csrf(http, path: str = "/staff/sign-in") -> str:
    http.get(path)
    return http.get_cookie("lv_csrf").value


def _sign_in(http, staff, code: str | None = None, password: str = PASSWORD):
    token = _csrf(http)
    return http.post(
        "/staff/sign-in",
        data={
            "csrf_token": token,
            "email": staff.email,
            "password": password,
            "code": code or next_code(staff),
        },
    )


def test_staff_create_prints_a_one_time_link_that_sets_password_and_totp(app, http):
    with app.app_context():
        create_client(get_session(), "Clinic A", "verifier")
    runner = app.test_cli_runner()
    create = ["staff", "create", "--client", "Clinic A", "--email"]
    result = runner.invoke(args=[*create, "HR@Example.org"])
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    path = re.sub(r"^https?://[^/]+", "", link)
    page = http.get(path)
    assert page.status_code == 200
    secret = re.search(rb'class="secret">([A-Z2-7]+)<', page.data).group(1).decode()
    token = http.get_cookie("lv_csrf").value
    totp = pyotp.TOTP(secret)
    short = http.post(path, data={"csrf_token": token, "password": "short", "code": totp.now()})
    assert short.status_code == 422
    wrong = http.post(path, data={"csrf_token": token, "password": PASSWORD, "code": "000000"})
    assert wrong.status_code == 422
    done = http.post(path, data={"csrf_token": token, "password": PASSWORD, "code": totp.now()})
    assert done.status_code == 200
    assert http.get(path).status_code == 404  # the link works once
    with app.app_context():
        account = get_session().query(StaffAccount).one()
        assert account.email == "hr@example.org"
        assert account.password_hash.startswith("$argon2id$")
    again = runner.invoke(args=[*create, "hr@example.org"])
    assert again.exit_code != 0 and "conflict" in again.output
    unknown = runner.invoke(args=["staff", "create", "--client", "Nobody", "--email", "a@b.org"])
    assert unknown.exit_code != 0 and "not_found" in unknown.output


def test_set_up_link_expires(app, http):
    with app.app_context():
        create_client(get_session(), "Clinic B", "verifier")
    link = (
        app.test_cli_runner()
        .invoke(args=["staff", "create", "--client", "Clinic B", "--email", "b@example.org"])
        .output.strip()
        .splitlines()[-1]
    )
    with time_machine.travel(utcnow() + timedelta(hours=25)):
        assert http.get(re.sub(r"^https?://[^/]+", "", link)).status_code == 404


def test_sign_in_needs_password_and_a_fresh_code(make_staff, http):
    staff = make_staff()
    assert _sign_in(http, staff, password="wrong password!").status_code == 401
    code = next_code(staff)
    assert _sign_in(http, staff, code=code).status_code == 302
    assert http.get("/hr/").status_code == 200
    http.delete_cookie("lv_session")
    assert _sign_in(http, staff, code=code).status_code == 401  # a code works once


def test_lockout_after_five_failures(make_staff, http):
    staff = make_staff()
    for _ in range(5):
        assert _sign_in(http, staff, password="not the password").status_code == 401
    locked = _sign_in(http, staff)
    assert locked.status_code == 401
    assert "15" in locked.get_data(as_text=True)


def test_unknown_email_fails_like_a_wrong_password(make_staff, http):
    staff = make_staff()
    staff.email = "nobody@example.org"
    answer = _sign_in(http, staff)
    assert answer.status_code == 401


def test_session_cookie_flags_and_limits(app, make_staff, http):
    staff = make_staff()
    answer = _sign_in(http, staff)
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith("lv_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    with time_machine.travel(utcnow() + timedelta(minutes=31)):
        assert http.get("/hr/").status_code == 302  # idle for 30 minutes
    with app.app_context():
        assert get_session().query(BrowserSession).count() == 0


def test_absolute_session_limit(app, make_staff, http):
    staff = make_staff()
    _sign_in(http, staff)
    start = utcnow()
    for minutes in range(25, 12 * 60, 25):  # active all day, never idle for 30 minutes
        with time_machine.travel(start + timedelta(minutes=minutes)):
            assert http.get("/hr/").status_code == 200
    with time_machine.travel(start + timedelta(hours=12, minutes=1)):
        assert http.get("/hr/").status_code == 302


def test_secure_cookies_behind_https(make_staff, app):
    staff = make_staff()
    http = app.test_client()
    http.get("/staff/sign-in", base_url="https://localhost")
    token = http.get_cookie("__Host-lv_csrf", domain="localhost").value
    answer = http.post(
        "/staff/sign-in",
        base_url="https://localhost",
        data={
            "csrf_token": token,
            "email": staff.email,
            "password": PASSWORD,
            "code": next_code(staff),
        },
    )
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if "lv_session=" in h)
    assert cookie.startswith("__Host-lv_session=") and "Secure" in cookie
    assert answer.headers["Strict-Transport-Security"]


@pytest.mark.parametrize("token", [None, "", "x" * 43, "é"])
def test_forms_without_the_csrf_token_are_refused(http, token):
    _csrf(http)
    data = {"email": "a@b.org", "password": "x", "code": "123456"}
    if token is not None:
        data["csrf_token"] = token
    answer = http.post("/staff/sign-in", data=data)
    assert answer.status_code == 400
    assert "text/html" in answer.content_type


def test_pages_carry_a_csp_without_inline_scripts(http):
    answer = http.get("/")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert not re.search(r"\son[a-z]+=", text), template
        assert "style=" not in text, template


def test_staff_of_a_regulator_cannot_use_hr_pages(make_staff, http):
    _sign_in(http, make_staff("regulator"))
    assert http.get("/hr/").status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/hr/checks/" + "a" * 5000,
        "/hr/checks/%00%01",
        "/regulator/licences/" + "9" * 100,
        "/me/sign-in/" + "b" * 200,
        "/me/r/" + "c" * 32,
        "/hr/rejections/<script>",
        "/language/xx",
        "/staff/setup/" + "d" * 300,
    ],
)
def test_hostile_paths_are_clean_4xx(make_staff, http, path):
    _sign_in(http, make_staff("regulator" if "regulator" in path else "verifier"))
    answer = http.get(path)
    assert 400 <= answer.status_code < 500


@pytest.mark.parametrize(
    "query",
    [
        "name=%E2%80%AE%00abc",
        "registration_number=" + "9" * 30,
        "registration_number=%EF%BC%91",
        "status=bogus&profession=bogus",
        "name=" + "x" * 10_000,
    ],
)
def test_hostile_searches_are_answered(make_staff, http, query):
    _sign_in(http, make_staff("regulator"))
    assert http.get(f"/regulator/?{query}").status_code == 200


@pytest.mark.parametrize(
    "query", ["from=2026-13-45", "to=" + "9" * 50, "page=99999999999999999999", "subject=%00"]
)
def test_hostile_history_filters_are_ignored(make_staff, http, query):
    _sign_in(http, make_staff())
    assert http.get(f"/hr/history?{query}").status_code == 200
    assert http.get(f"/hr/history.csv?{query}").status_code == 200


@given(st.text(max_size=30))
def test_csv_cells_never_start_a_formula(value):
    cell = spreadsheet_safe(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell.endswith(value)


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/hr/", "/hr/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("/ｈｒ", "/"),
    ],
)
def test_language_switch_returns_only_to_this_site(target, expected):
    assert safe_next(target) == expected


def test_holder_sign_in_endpoints_refuse_bad_answers(app, http):
    from web.card_flow import start_sign_in

    with app.app_context():
        sign_in = start_sign_in(get_session(), secrets.token_urlsafe(32))
    url = f"/me/sign-in/{sign_in.id}/response"
    assert http.post(url, data="x", content_type="text/plain").status_code == 415
    assert http.post(url, json=[1]).status_code == 400
    assert http.post(url, json={"assertion": 5}).status_code == 400
    assert http.post(url, json={"assertion": "a.b.c"}).status_code in (400, 401)
    unknown = "/me/sign-in/" + "0" * 32 + "/response"
    assert http.post(unknown, json={"assertion": "a.b.c"}).status_code == 404
    request = http.get(f"/me/r/{sign_in.id}")
    assert request.status_code == 200 and request.mimetype == "application/jwt"
