from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from core.logging import LOGGER_NAME
from core.my_number import check_digit, redact_my_numbers


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
    redacted = redact_my_numbers(text)
    assert number not in redacted.replace(noise, "") or number in noise
    assert "[redacted]" in redacted


@given(st.integers(min_value=0, max_value=10**13 - 1))
def test_longer_digit_runs_are_not_split(value):
    text = f"{value:013d}"
    assert redact_my_numbers(text) == text
