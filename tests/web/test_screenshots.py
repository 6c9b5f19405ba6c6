"""A screenshot of each main page (Japanese, phone and desktop widths). ``make
screenshots`` sets SCREENSHOTS_DIR=docs/screenshots; otherwise they go to a temporary
folder, and the test still checks every page rendered."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fixtures.licensing import random_my_number
from tests.web.card import answer_check
from tests.web.conftest import sign_in_staff


@pytest.fixture
def language() -> str:
    return "ja"


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_main_pages(
    page, live, shots, make_staff, make_client, monitor, register_licence, issue_card, publish_crl
):
    def shot(name: str) -> None:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000

    my_number = random_my_number()
    licence = register_licence(my_number=my_number, name="山田 太郎", profession="doctor")
    card = issue_card(my_number)
    monitor(make_client("verifier", "亀田総合病院 人事部"), licence)
    publish_crl()
    page.set_viewport_size({"width": 1024, "height": 720})
    page.goto("/")
    shot("start")

    sign_in_staff(page, make_staff("verifier", "聖路加病院 人事部"))
    page.select_option("#profession", "doctor")
    page.click("main form button[type=submit]")
    shot("hr-check-waiting")
    answer_check(live.base_url, page.locator("#request-uri").input_value(), card)
    expect(page.locator("section.outcome")).to_be_visible(timeout=15_000)
    shot("hr-check-outcome")
    page.goto("/hr/history")
    shot("hr-history")
    page.click("header form button")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto("/me/")
    page.click("main form button[type=submit]")
    shot("me-sign-in")
    answer_check(live.base_url, page.locator("#request-uri").input_value(), card)
    expect(page.locator("#log-heading")).to_be_visible(timeout=15_000)
    shot("me-home")  # with who monitors the licence
    page.locator("#monitorings form button").first.click()
    shot("me-end-monitoring")
    page.goto("/me/")
    page.click("header form button")

    page.set_viewport_size({"width": 1024, "height": 720})
    sign_in_staff(page, make_staff("regulator", "厚生労働省"))
    page.fill("#name", "山田")
    page.click("form.filters button")
    shot("regulator-search")
    page.locator("tbody a").first.click()
    shot("regulator-licence")
