"""The regulator's journey in the browser: search, a licence and its history, suspend /
reinstate / revoke with a confirmation step, CSV import with per-line errors, the audit
trail; both languages; axe-core on every page."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

from playwright.sync_api import expect

from tests.fixtures.licensing import new_registration_number, random_my_number
from tests.web.conftest import check_accessibility, sign_in_staff
from web import imports

STATUS_WORDS = {
    "ja": {"suspended": "停止中", "active": "有効", "revoked": "取消"},
    "en": {"suspended": "Suspended", "active": "Active", "revoked": "Revoked"},
}


def test_search_change_status_and_audit(page, language, make_staff, register_licence):
    staff = make_staff("regulator")
    number = new_registration_number()
    licence = register_licence(name="佐藤 花子", registration_number=number, profession="nurse")
    register_licence(name="鈴木 一郎")  # another licence the search must not return
    sign_in_staff(page, staff)
    expect(page).to_have_url(re.compile(r"/regulator/$"))
    check_accessibility(page)

    page.fill("#name", "花子")
    page.select_option("#profession", "nurse")
    page.click("form.filters button")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("佐藤 花子")
    check_accessibility(page)
    rows.first.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/regulator/licences/{licence.id}$"))
    check_accessibility(page)

    until = (date.today() + timedelta(days=30)).isoformat()
    page.fill("#reason-suspend", "Investigation pending")
    page.fill("#until-suspend", until)
    page.locator("form.action").first.locator("button").click()
    # The confirmation step: nothing changed yet.
    expect(page.locator("main [role=alert]")).to_be_visible()
    check_accessibility(page)
    page.click("main form button[type=submit]")
    expect(page.locator("#licence-status")).to_contain_text(STATUS_WORDS[language]["suspended"])
    expect(page.locator("#licence-status")).to_contain_text(until)

    page.fill("#reason-reinstate", "Investigation closed")
    page.locator("form.action").nth(2).locator("button").click()
    page.click("main form button[type=submit]")
    expect(page.locator("#licence-status")).to_contain_text(STATUS_WORDS[language]["active"])

    page.fill("#reason-revoke", "Struck off")
    page.locator("form.action").nth(1).locator("button").click()
    page.click("main form button[type=submit]")
    expect(page.locator("#licence-status")).to_contain_text(STATUS_WORDS[language]["revoked"])
    history = page.locator("table tbody tr")
    expect(history).to_have_count(4)  # registered, suspended, reinstated, revoked

    # Reinstating a revoked licence is refused by licensing, shown on the page.
    page.fill("#reason-reinstate", "Mistake")
    page.locator("form.action").nth(2).locator("button").click()
    page.click("main form button[type=submit]")
    expect(page.locator("#form-error")).to_be_visible()
    check_accessibility(page)

    page.goto("/regulator/audit")
    expect(page.locator("#audit-result")).to_have_class("ok")
    check_accessibility(page)


def test_search_by_registration_number_and_bad_number(page, make_staff, register_licence):
    staff = make_staff("regulator")
    number = new_registration_number()
    register_licence(registration_number=number, name="高橋 健")
    sign_in_staff(page, staff)
    page.fill("#registration_number", number)
    page.click("form.filters button")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("高橋 健")
    page.fill("#registration_number", "12a")
    page.click("form.filters button")
    expect(page.locator("#number-error")).to_be_visible()
    check_accessibility(page)


def test_csv_import_shows_errors_by_line(page, make_staff, tmp_path):
    staff = make_staff("regulator")
    good, bad = new_registration_number(), new_registration_number()
    csv_file = tmp_path / "licences.csv"
    csv_file.write_text(
        "profession,my_number,name,registration_number,registered_on\n"
        f"doctor,{random_my_number()},伊藤 誠,{good},2015-04-01\n"
        f"doctor,123456789012,渡辺 愛,{bad},2015-04-01\n",
        encoding="utf-8",
    )
    sign_in_staff(page, staff)
    page.goto("/regulator/import")
    check_accessibility(page)
    page.set_input_files("#file", str(csv_file))
    page.click("main form button[type=submit]")
    errors = page.locator("ul.errors li")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("3")
    check_accessibility(page)
    page.check("#skip_invalid")
    page.set_input_files("#file", str(csv_file))
    page.click("main form button[type=submit]")
    expect(page.locator("progress")).to_have_attribute("value", "1")
    page.goto(f"/regulator/?registration_number={good}")
    expect(page.locator("tbody")).to_contain_text("伊藤 誠")


# Keeps every value the progress bar takes, across the page's reloads (sessionStorage).
RECORD_PROGRESS = """
window.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("import-progress");
  if (!bar) { return; }
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem("progress") || "[]");
    seen.push([bar.value, bar.max]);
    sessionStorage.setItem("progress", JSON.stringify(seen));
  }).observe(bar, { attributes: true });
});
"""


def test_a_large_import_shows_its_progress_then_the_errors(page, make_staff, tmp_path, monkeypatch):
    # On a fast machine 4,000 rows are written before the page first asks: each progress
    # report lingers a little (the server runs in this process), so the bar is seen moving.
    save = imports._save

    def lingering_save(path, state):
        save(path, state)
        if state.get("state") == "running":
            time.sleep(0.6)

    monkeypatch.setattr(imports, "_save", lingering_save)
    rows = 4000
    invalid_lines = {2, 1500}  # file lines (the header is line 1)
    lines = ["profession,my_number,name,registration_number,registered_on"]
    for line in range(2, rows + 2):
        my_number = "123456789012" if line in invalid_lines else random_my_number()
        lines.append(f"nurse,{my_number},看護 {line},{new_registration_number()},2019-04-01")
    csv_file = tmp_path / "large.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.add_init_script(RECORD_PROGRESS)
    sign_in_staff(page, make_staff("regulator"))
    page.goto("/regulator/import")
    page.check("#skip_invalid")
    page.set_input_files("#file", str(csv_file))
    page.click("main form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/regulator/import/[0-9a-f]{32}$"))

    errors = page.locator("ul.errors li")
    expect(errors).to_have_count(2, timeout=60_000)
    expect(errors.first).to_contain_text("2")
    expect(errors.last).to_contain_text("1500")
    expect(page.locator("#import-progress")).to_have_attribute("value", str(rows - 2))
    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('progress') || '[]')")
    assert any(0 < value < maximum for value, maximum in seen), seen
    check_accessibility(page)

    # Another staff member cannot follow this import.
    job_url = page.url
    other = page.context.browser.new_context(base_url=page.url.split("/regulator")[0])
    other_page = other.new_page()
    sign_in_staff(other_page, make_staff("regulator"))
    assert other_page.goto(job_url).status == 404
    assert other_page.goto(job_url + "/state.json").status == 404
    other.close()


def test_import_of_an_unreadable_file_says_why(page, make_staff, tmp_path):
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("not,the,right,header\n", encoding="utf-8")
    sign_in_staff(page, make_staff("regulator"))
    page.goto("/regulator/import")
    page.set_input_files("#file", str(csv_file))
    page.click("main form button[type=submit]")
    expect(page.locator("#import-job [role=alert]")).to_be_visible(timeout=15_000)
    check_accessibility(page)
    assert page.goto("/regulator/import/" + "0" * 32).status == 404
    assert page.goto("/regulator/import/not-an-id").status == 404


def test_hr_staff_cannot_open_regulator_pages(page, make_staff):
    sign_in_staff(page, make_staff("verifier"))
    response = page.goto("/regulator/")
    assert response.status == 403
