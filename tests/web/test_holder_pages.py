"""The holder's journey in the browser: sign in with the card (the card app answers the
QR request), who checked me (rejected attempts highlighted, pagination), a credential
download, sign out; both languages; axe-core on every page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from core.db import get_session, utcnow
from tests.fixtures.licensing import random_my_number
from tests.web.card import answer_check
from tests.web.conftest import check_accessibility
from verification.models import AccessRecord
from web.browser import CSRF_FIELD


def _signed_in(page, live, card) -> None:
    page.goto("/me/")
    check_accessibility(page)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/me/sign-in/[0-9a-f]{32}$"))
    request_url = page.locator("#request-uri").input_value()
    assert request_url.startswith(f"{live.base_url}/me/r/")
    check_accessibility(page)
    answer = answer_check(live.base_url, request_url, card)
    assert answer.status == 200, answer.body
    # The page notices by itself (poll.js) and continues to the holder's home.
    expect(page).to_have_url(re.compile(r"/me/$"), timeout=15_000)


def test_sign_in_access_log_credential_sign_out(
    page, live, app, register_licence, issue_card, publish_crl
):
    my_number = random_my_number()
    licence = register_licence(my_number=my_number, profession="doctor")
    card = issue_card(my_number)
    publish_crl()
    with app.app_context():
        session = get_session()
        session.add(
            AccessRecord(
                id="a" * 32,
                holder_code=_holder_code(app, licence.id),
                verifier_client_id="x",
                verifier_name="Unknown clinic",
                at=utcnow(),
                profession="doctor",
                outcome="invalid_nonce",
            )
        )
        session.commit()

    _signed_in(page, live, card)
    rows = page.locator("tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("tr.rejected")).to_contain_text("Unknown clinic")
    check_accessibility(page)

    page.select_option("#cred-profession", "doctor")
    with page.expect_download() as download:
        page.click("#cred-heading ~ form button")
    assert download.value.suggested_filename == "doctor-credential.sd-jwt"
    assert download.value.path().read_text().count("~") >= 1

    page.click("header form button")
    expect(page.locator("main form button")).to_be_visible()
    page.goto("/me/")
    expect(page.locator("tbody")).to_have_count(0)  # signed out: the sign-in page


def test_a_sign_in_is_taken_only_by_the_browser_that_started_it(
    page, browser, live, register_licence, issue_card, publish_crl
):
    my_number = random_my_number()
    register_licence(my_number=my_number)
    card = issue_card(my_number)
    publish_crl()
    page.goto("/me/")
    page.click("main form button[type=submit]")
    sign_in_url = page.url
    other = browser.new_context(base_url=live.base_url).new_page()
    other.goto(sign_in_url)
    answer_check(live.base_url, page.locator("#request-uri").input_value(), card)
    other.goto(sign_in_url)
    assert "/me/sign-in/" in other.url  # the other browser is not signed in
    other.goto("/me/")
    expect(other.locator("tbody")).to_have_count(0)
    other.context.close()
    expect(page).to_have_url(re.compile(r"/me/$"), timeout=15_000)


def _holder_code(app, licence_id: str) -> str:
    from licensing.models import Licence

    with app.app_context():
        return get_session().query(Licence).filter_by(id=licence_id).one().holder_code


ENDED_WORDS = {"ja": "モニタリング終了", "en": "Monitoring ended"}


def test_holder_sees_and_ends_a_monitoring_with_the_keyboard(
    page,
    language,
    live,
    register_licence,
    issue_card,
    publish_crl,
    verifier,
    other_verifier,
    monitor,
):
    my_number = random_my_number()
    licence = register_licence(my_number=my_number, profession="nurse")
    card = issue_card(my_number)
    publish_crl()
    ended_id, _subject = monitor(verifier, licence)
    monitor(other_verifier, licence)

    _signed_in(page, live, card)
    listed = page.locator("#monitorings tbody tr")
    expect(listed).to_have_count(2)
    expect(page.locator("#monitorings")).to_contain_text("St Luke's HR")
    check_accessibility(page)

    end_button = page.locator(f"form[action$='/me/monitoring/{ended_id}/end'] button")
    end_button.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/me/monitoring/{ended_id}/end\??$"))
    expect(page.locator("main")).to_contain_text("St Luke's HR")
    check_accessibility(page)
    page.locator("main form button[type=submit]").focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(listed).to_have_count(1)
    expect(page.locator("#monitorings")).not_to_contain_text("St Luke's HR")
    expect(page.locator("#monitorings")).to_contain_text("Kameda General Hospital HR")
    ended_row = page.locator("#log-heading ~ div tbody tr", has_text="St Luke's HR").first
    expect(ended_row).to_contain_text(ENDED_WORDS[language])
    check_accessibility(page)

    # Ended (or never ours): not found, on the confirmation and on the POST alike.
    assert page.request.get(f"/me/monitoring/{ended_id}/end").status == 404
    csrf = page.locator(f"input[name={CSRF_FIELD}]").first
    replay = page.request.post(
        f"/me/monitoring/{ended_id}/end", form={CSRF_FIELD: csrf.input_value()}
    )
    assert replay.status == 404
    expect(listed).to_have_count(1)
