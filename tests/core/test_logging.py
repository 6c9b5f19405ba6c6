from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from core.logging import LOGGER_NAME, scrub_my_numbers
from core.my_number import check_digit
from tests.fixtures.identity import my_numbers


def _valid(prefix: str) -> str:
    return prefix + str(check_digit(prefix))


def _log_lines(capfd) -> list[dict]:
    err = capfd.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_one_json_line_per_request_with_required_fields(http, capfd):
    capfd.readouterr()
    http.get("/healthz?secret=1", headers={"X-Request-Id": "req-123"})
    lines = [line for line in _log_lines(capfd) if line.get("msg") == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-123"
    assert line["path"] == "/healthz"  # no query string
    assert line["route"] == "/healthz"
    assert line["status"] == 200
    assert line["client"] is None
    assert isinstance(line["latency_ms"], float)


def test_request_id_header_is_only_trusted_when_well_formed(http, capfd):
    capfd.readouterr()
    response = http.get("/healthz", headers={"X-Request-Id": "bad id; drop <script>"})
    request_id = response.headers["X-Request-Id"]
    assert request_id and " " not in request_id and "<" not in request_id


def test_scrubber_redacts_valid_my_numbers_anywhere_in_a_log_line(app, capfd):
    number = _valid("12345678901")
    logger = logging.getLogger(LOGGER_NAME)
    capfd.readouterr()
    logger.info("registering %s", number, extra={"field": f"mn={number}"})
    logger.getChild("nested").warning("oops " + number)
    err = capfd.readouterr().err
    assert number not in err
    assert err.count("[redacted]") == 3


def test_scrubber_keeps_twelve_digit_numbers_that_fail_the_check_digit(app, capfd):
    number = _valid("12345678901")
    invalid = number[:11] + str((int(number[11]) + 1) % 10)
    logging.getLogger(LOGGER_NAME).info("ticket %s", invalid)
    assert invalid in capfd.readouterr().err


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.text(max_size=20))
def test_redaction_removes_every_valid_number(prefix, noise):
    number = _valid(prefix)
    text = f"{noise} {number} {noise}"
    redacted = scrub_my_numbers(text)
    assert number not in redacted.replace(noise, "") or number in noise
    assert "[redacted]" in redacted


@given(st.integers(min_value=0, max_value=10**13 - 1))
def test_longer_digit_runs_are_not_split(value):
    text = f"{value:013d}"
    assert scrub_my_numbers(text) == text


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


@given(
    my_numbers(),
    st.sampled_from(["", "-", " ", "\u3000", "\uff0d", "\u2010"]),
    st.booleans(),
    st.text(alphabet="ab :/=", max_size=5),
)
def test_scrubber_redacts_separated_and_full_width_forms(number, separator, wide, around):
    written = f"{number[:4]}{separator}{number[4:8]}{separator}{number[8:]}"
    if wide:
        written = _full_width(written)
    line = f"{around}{written}{around}"
    assert scrub_my_numbers(line) == f"{around}[redacted]{around}"


@given(my_numbers())
def test_scrubber_leaves_longer_digit_runs_and_invalid_numbers(number):
    invalid = number[:11] + str((int(number[11]) + 1) % 10)
    assert scrub_my_numbers(invalid) == invalid
    assert scrub_my_numbers(f"{invalid[:4]}-{invalid[4:8]}-{invalid[8:]}") == (
        f"{invalid[:4]}-{invalid[4:8]}-{invalid[8:]}"
    )
    assert scrub_my_numbers("9" + number) == "9" + number
    assert scrub_my_numbers(_full_width(number) + "０") == _full_width(number) + "０"


def test_scrubber_covers_paths_in_the_request_log(http, capfd):
    number = _valid("12345678901")
    capfd.readouterr()
    http.get(f"/v1/licences/{number[:4]}-{number[4:8]}-{number[8:]}?registration={number}")
    err = capfd.readouterr().err
    assert number[:4] not in err and "registration" not in err
