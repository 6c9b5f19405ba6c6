"""gunicorn settings (``make run``: ``gunicorn -c python:core.gunicorn_config app:app``).

- The access log never records a query string (registration numbers travel in them):
  the request line, the referrer and the raw environ are logged without one.
- Every access and error log line passes the one My Number scrubber of
  ``core.logging`` (paths are decoded first, so full-width digits are seen as such).
- Before any worker starts, the master checks the configuration and that the databases
  answer: a mistake is one line and a non-zero exit status, not a crash loop of workers.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from urllib.parse import urlsplit, urlunsplit

from gunicorn.glogging import Logger

from core.config import ConfigurationError, check_databases_reachable, settings_from_env
from core.logging import scrub_my_numbers

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
logger_class = "core.gunicorn_config.ScrubbingLogger"


def _path(environ: dict) -> str:
    # PATH_INFO is a WSGI string (the raw bytes as latin-1): decode it as the client meant.
    raw = environ.get("PATH_INFO", "")
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw


def _without_query(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "-"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_my_numbers(record.getMessage()), None
        return True


class ScrubbingLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, _ScrubFilter) for f in log.filters):
                log.addFilter(_ScrubFilter())

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        path = _path(environ)
        atoms.update(
            {
                "r": f"{environ['REQUEST_METHOD']} {path} {environ['SERVER_PROTOCOL']}",
                "U": path,
                "q": "",
                "f": _without_query(environ.get("HTTP_REFERER", "-")),
                "{referer}i": _without_query(environ.get("HTTP_REFERER", "-")),
                "{raw_uri}e": path,
                "{query_string}e": "",
            }
        )
        return atoms


def on_starting(_server) -> None:
    # Before any worker imports prometheus_client: each worker then keeps its counters in
    # files there and /metrics sums them (core.metrics). A fresh folder per server start,
    # as prometheus_client requires, unless the operator names one.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="licence-metrics-")
    try:
        check_databases_reachable(settings_from_env())
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        sys.exit(1)


def child_exit(_server, worker) -> None:
    # A dead worker's live gauges (pool connections) must stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
