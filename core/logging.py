"""Structured JSON logs: one line per request, and nothing that looks like a My Number.

``scrub_my_numbers`` is the one scrubber, used by the service's log and gunicorn's access
log (``core.gunicorn_config``). It is a backstop: code never logs a My Number on
purpose, but any 12 digits that pass the check digit are replaced by ``[redacted]`` in
the final line, whatever field they hide in: also written 1234-5678-9012 or with spaces,
and in full-width digits (１２３４…).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
import unicodedata
from datetime import UTC, datetime

from flask import Flask, g, request

from core.my_number import MY_NUMBER_LIKE, is_valid_my_number

LOGGER_NAME = "licence_service"
REDACTED = "[redacted]"
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _redact_if_valid(match: re.Match[str]) -> str:
    digits = "".join(c for c in unicodedata.normalize("NFKC", match.group()) if c.isdigit())
    return REDACTED if is_valid_my_number(digits) else match.group()


def scrub_my_numbers(text: str) -> str:
    """``text`` with every My Number (plain, separated or full-width) redacted."""
    return MY_NUMBER_LIKE.sub(_redact_if_valid, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        return json.dumps(entry, default=str, ensure_ascii=False)


class MyNumberScrubFilter(logging.Filter):
    """Formats the record once, redacts it, and freezes the result as the message."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self._formatter = formatter

    def filter(self, record: logging.LogRecord) -> bool:
        line = scrub_my_numbers(self._formatter.format(record))
        record.msg, record.args = line, None
        for key in [k for k in vars(record) if k not in _STANDARD_ATTRS]:
            delattr(record, key)
        record.scrubbed = True
        return True


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (gunicorn, pytest capture)."""

    _licence_service = True

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _ScrubbedPassthrough(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return (
            record.getMessage()
            if getattr(record, "scrubbed", False)
            else scrub_my_numbers(super().format(record))
        )


def configure_logging(app: Flask) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, "_licence_service", False) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.addFilter(MyNumberScrubFilter(JsonFormatter()))
        handler.setFormatter(_ScrubbedPassthrough())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = True  # lets pytest's caplog see records; root has no handler in prod

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else secrets.token_hex(8)

    @app.after_request
    def _log_request(response):
        started = g.get("request_started", time.perf_counter())
        client = g.get("client")
        logger.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.path,  # never the query string
                "route": request.url_rule.rule if request.url_rule else None,
                "client": client.id if client is not None else None,
                "status": response.status_code,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    return logger
