"""The HR journey in the browser: start a check, the card app answers the QR request, the
page shows the outcome by itself; receipt, printable page, history with filters and CSV;
a rejection explained; a keyboard-only pass; both languages; axe-core on every page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.fixtures.licensing import random_my_number
from tests.web.card import answer_check
from tests.web.conftest import check_accessibility, sign_in_staff


def _start_check(page, profession: str = "doctor") -> str:
    page.select_option("#profession", profession)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/hr/checks/[0-9a-f]{32}$"))
    expect(page.locator(".qr svg")).to_be_visible()
    return page.locator("#request-uri").input_value()


def test_check_to_outcome_receipt_and_history(
    page, live, make_staff, register_licence, issue_card, publish_crl
):
    staff = make_staff("verifier", "St Luke's HR")
    my_number = random_my_number()
    register_licence(my_number=my_number, name="山田 太郎", profession="doctor")
    card = issue_card(my_number)
    publish_crl()
    sign_in_staff(page, staff)
    expect(page).to_have_url(re.compile(r"/hr/$"))
    check_accessibility(page)

    request_url = _start_check(page)
    assert request_url.startswith(f"{live.base_url}/r/")
    check_accessibility(page)
    answer = answer_check(live.base_url, request_url, card)
    assert answer.status == 200 and answer.body["outcome"] == "licensed", answer.body

    outcome = page.locator("section.outcome")
    expect(outcome).to_be_visible(timeout=15_000)
    expect(outcome).to_contain_text("山田 太郎")
    subject = outcome.locator("dd code").first.inner_text()
    check_accessibility(page)

    with page.expect_download() as download:
        page.click("a[download]")
    assert download.value.path().read_text().count(".") == 2  # a compact JWS

    page.click("section.outcome a:not([download])")
    verification_id = page.locator("dd code").last.inner_text()
    assert verification_id
    check_accessibility(page)

    page.goto(f"/hr/history?subject={subject}&outcome=licensed")
    expect(page.locator("tbody tr")).to_have_count(1)
    check_accessibility(page)
    page.goto("/hr/history?outcome=revoked")
    expect(page.locator("tbody tr td[colspan]")).to_be_visible()
    with page.expect_download() as download:
        page.goto("/hr/history")
        page.click("main p a")
    text = download.value.path().read_text(encoding="utf-8")
    assert "山田 太郎" in text and subject in text


def test_rejected_answer_links_to_its_explanation(
    page, live, language, make_staff, register_licence, issue_card, publish_crl, card_authority
):
    staff = make_staff("verifier")
    my_number = random_my_number()
    register_licence(my_number=my_number)
    card = issue_card(my_number)
    card_authority.revoke(card.serial)
    publish_crl()
    sign_in_staff(page, staff)
    request_url = _start_check(page)
    answer = answer_check(live.base_url, request_url, card)
    assert answer.status == 403
    link = page.locator("#waiting a[href*='/hr/rejections/card_revoked']")
    expect(link).to_be_visible(timeout=15_000)
    link.click()
    expect(page.locator("h1")).to_have_text("カード失効" if language == "ja" else "Card revoked")
    check_accessibility(page)


def test_keyboard_only_check(page, live, make_staff, register_licence, issue_card, publish_crl):
    staff = make_staff("verifier")
    my_number = random_my_number()
    register_licence(my_number=my_number, profession="nurse")
    card = issue_card(my_number)
    publish_crl()
    sign_in_staff(page, staff)

    def tab_to(selector: str) -> None:
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"{selector} is not reachable with Tab")

    tab_to("#profession")
    for _ in range(3):  # doctor, dentist, pharmacist, nurse
        page.keyboard.press("ArrowDown")
    assert page.locator("#profession").input_value() == "nurse"
    tab_to("#monitoring")
    page.keyboard.press("Space")
    tab_to("main form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/hr/checks/"))
    tab_to("#request-uri")
    request_url = page.evaluate("() => document.activeElement.value")
    answer_check(live.base_url, request_url, card, consents=("monitoring",))
    expect(page.locator("section.outcome")).to_be_visible(timeout=15_000)
    tab_to("a[download]")
    tab_to("section.outcome a:not([download])")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/print$"))


def test_checks_of_another_organisation_are_not_found(page, live, make_staff):
    from core.db import get_session
    from web.models import HrCheck

    ours, theirs = make_staff("verifier"), make_staff("verifier")
    sign_in_staff(page, theirs)
    _start_check(page)
    check_url = page.url
    page.click("header form button")  # sign out
    sign_in_staff(page, ours)
    response = page.goto(check_url)
    assert response.status == 404
    response = page.goto(check_url + "/receipt.jws")
    assert response.status == 404
    with live.app.app_context():
        assert get_session().query(HrCheck).count() == 1
