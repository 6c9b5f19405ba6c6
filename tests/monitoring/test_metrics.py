"""The outbox's figures in /metrics (monitoring/metrics.py)."""

from __future__ import annotations

import re

from tests.fixtures.monitoring import regulator_action


def _value(body: str, series: str, label: str, value: str) -> float:
    found = re.findall(rf'^{series}\{{{label}="{value}"\}} (\S+)$', body, re.MULTILINE)
    return float(found[0]) if found else 0.0


def test_backlog_and_failed_pushes_are_read_from_the_database(
    http, register_licence, regulator, verifier, monitor, receiver, webhook, run_worker
):
    _, headers = verifier
    _, regulator_headers = regulator
    licence = register_licence(profession="nurse")
    monitor(verifier, licence)
    regulator_action(http, regulator_headers, licence.id, "revoke")

    pending = http.get("/metrics").get_data(as_text=True)
    assert _value(pending, "licence_outbox_events", "state", "pending") == 1
    assert _value(pending, "licence_outbox_events", "state", "delivered") == 0

    receiver.script = [500]
    webhook(headers, receiver)
    assert run_worker() == 2

    delivered = http.get("/metrics").get_data(as_text=True)
    assert _value(delivered, "licence_outbox_events", "state", "pending") == 0
    assert _value(delivered, "licence_outbox_events", "state", "delivered") == 1
    assert _value(delivered, "licence_delivery_attempts_total", "outcome", "http_error") == 1
    assert _value(delivered, "licence_delivery_attempts_total", "outcome", "accepted") == 1
