"""Prometheus metrics at ``/metrics`` (prometheus_client).

Answered to loopback clients, and to any other client only with
``Authorization: Bearer <METRICS_TOKEN>`` when ``METRICS_TOKEN`` is set. The address is the
one the nearest trusted proxy saw (``TRUSTED_PROXIES``), so a proxy on the same host does
not make every client "loopback".

Under gunicorn every worker is a process of its own: with ``PROMETHEUS_MULTIPROC_DIR`` set
(``core.gunicorn_config`` sets it before any worker imports the app) counters and
histograms are kept in files there and summed at each scrape, whichever worker answers.
Figures read from the database at scrape time (CRL ages, the outbox backlog) come from
collectors that domains add with ``add_collector``: they are the same in every worker.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterable

from apiflask import APIBlueprint
from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import event

from core.errors import Forbidden

REQUEST_DURATION = Histogram(
    "licence_http_request_duration_seconds",
    "Time to answer a request, per route template (never the raw path), method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_POOL_CHECKED_OUT = Gauge(
    "licence_db_pool_checked_out",
    "Database connections currently checked out of the pools (all workers).",
    multiprocess_mode="livesum",
)

_COLLECTORS = "metrics_collectors"

metrics_bp = APIBlueprint("metrics", __name__, tag="Operations")


class MetricsForbidden(Forbidden):
    default_detail = (
        "Metrics are served to loopback clients, or with the bearer token set in "
        "METRICS_TOKEN; ask the operator for it."
    )


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(metrics_bp)
    app.extensions.setdefault(_COLLECTORS, [])
    engine = app.extensions["db"].engine
    event.listen(engine, "checkout", lambda *_: DB_POOL_CHECKED_OUT.inc())
    event.listen(engine, "checkin", lambda *_: DB_POOL_CHECKED_OUT.dec())


def add_collector(app: Flask, collect: Callable[[], Iterable[Metric]]) -> None:
    """A domain's figures computed at scrape time (e.g. read from the database)."""
    app.extensions.setdefault(_COLLECTORS, []).append(collect)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUEST_DURATION.labels(rule, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
    return response


def _allowed() -> bool:
    try:
        if ipaddress.ip_address(request.remote_addr or "").is_loopback:
            return True
    except ValueError:
        pass
    token = current_app.config.get("METRICS_TOKEN") or ""
    offered = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(offered.encode(), f"Bearer {token}".encode())


class _AppCollector(Collector):
    def __init__(self, collects: list[Callable[[], Iterable[Metric]]]) -> None:
        self._collects = collects

    def collect(self) -> Iterable[Metric]:
        for collect in self._collects:
            yield from collect()


class _ProcessCollector(Collector):
    """This process's own registry (single-process servers, the Flask dev server)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


@metrics_bp.get("/metrics")
@metrics_bp.doc(
    summary="Prometheus metrics (loopback clients, or with METRICS_TOKEN)",
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": "# TYPE licence_db_pool_checked_out gauge\n"
                    "licence_db_pool_checked_out 1.0\n",
                }
            },
        },
        403: "Neither a loopback client nor the METRICS_TOKEN bearer token",
    },
    operation_id="get_metrics",
)
def metrics() -> Response:
    if not _allowed():
        raise MetricsForbidden()
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessCollector())
    registry.register(_AppCollector(current_app.extensions.get(_COLLECTORS, [])))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
