"""Browser tests: the app served by a real server thread per test module, driven by
Playwright through the Debian chromium (Playwright's own browser download is not used).

``app`` is overridden here: one app per module (the server thread serves it), and every
row a test wrote is deleted after it, as in tests/conftest.py; the card authority folder
is removed too, so ``card_authority`` copies a fresh one for each test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from werkzeug.serving import make_server

from app import create_app
from clients.service import create_client
from core import db
from tests.conftest import _delete_all_rows

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PASSWORD = "correct horse battery staple"


@dataclass
class Live:
    app: object
    base_url: str


@pytest.fixture(scope="module")
def live(database_url, tmp_path_factory) -> Iterator[Live]:
    instance = tmp_path_factory.mktemp("web") / "instance"
    application = create_app(
        {"INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, "TESTING": True}
    )
    server = make_server("127.0.0.1", 0, application, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    application.config["PUBLIC_BASE_URL"] = base_url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(application, base_url)
    server.shutdown()
    thread.join(timeout=5)
    application.extensions["db"].engine.dispose()


@pytest.fixture
def app(live, database_url):
    yield live.app
    _delete_all_rows(database_url)
    shutil.rmtree(live.app.config["CARD_AUTHORITY_DIR"], ignore_errors=True)
    from verification.trust import reset_trust_anchors

    reset_trust_anchors(live.app)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(params=["ja", "en"])
def language(request) -> str:
    return request.param


@pytest.fixture
def page(browser, live, language):
    context = browser.new_context(
        base_url=live.base_url, locale=language, extra_http_headers={"Accept-Language": language}
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield tab
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def check_accessibility(page) -> None:
    """axe-core on the current page: no serious or critical violation."""
    # Evaluated through the DevTools protocol: the page's CSP (no inline scripts) stays on.
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, json.dumps(bad, ensure_ascii=False)


@dataclass
class Staff:
    email: str
    password: str
    totp: pyotp.TOTP
    client_id: str
    client_name: str


@pytest.fixture
def make_staff(app):
    """Factory: a verifier or regulator client and a staff account set up with a password
    and TOTP (through the service, as the set-up page does)."""
    from web.staff import complete_setup, create_staff

    def _make(role: str = "verifier", name: str | None = None) -> Staff:
        client_name = name or f"{role} {secrets.token_hex(3)}"
        with app.app_context():
            session = db.get_session()
            client = create_client(session, client_name, role).client
            created = create_staff(
                session, client_name=client_name, email=f"{secrets.token_hex(4)}@example.org"
            )
            totp = pyotp.TOTP(created.account.totp_secret)
            complete_setup(session, created.setup_token, PASSWORD, totp.now())
            email = created.account.email
        return Staff(email, PASSWORD, totp, client.id, client_name)

    return _make


def next_code(staff: Staff) -> str:
    """A code not used yet: the next time step's (one step of drift is accepted)."""
    import time

    return staff.totp.at(time.time() + staff.totp.interval)


def sign_in_staff(page, staff: Staff, code: str | None = None) -> None:
    page.goto("/staff/sign-in")
    page.fill("#email", staff.email)
    page.fill("#password", staff.password)
    page.fill("#code", code or next_code(staff))
    page.click("button[type=submit]")
