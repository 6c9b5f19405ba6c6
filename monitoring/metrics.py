"""The monitoring domain's figures for ``/metrics`` (``core.metrics``), read from the
database at scrape time: the same in every worker and every instance."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select

from core.db import get_session
from monitoring.models import DeliveryAttempt, DeliveryState, MonitoringEvent


def outbox() -> Iterable[Metric]:
    session = get_session()
    backlog = GaugeMetricFamily(
        "licence_outbox_events",
        "Monitoring events by delivery state (pending: waiting for a push; expired: pushes "
        "failed for 24 hours, still available to polls).",
        labels=["state"],
    )
    counts = dict(
        session.execute(
            select(MonitoringEvent.state, func.count()).group_by(MonitoringEvent.state)
        ).all()
    )
    for state in DeliveryState:
        backlog.add_metric([state.value], counts.get(state, 0))
    attempts = CounterMetricFamily(
        "licence_delivery_attempts",
        "Webhook push attempts by outcome (accepted, http_error, timeout, "
        "connection_failed, refused_target).",
        labels=["outcome"],
    )
    for outcome, count in session.execute(
        select(DeliveryAttempt.outcome, func.count()).group_by(DeliveryAttempt.outcome)
    ):
        attempts.add_metric([outcome], count)
    yield backlog
    yield attempts
