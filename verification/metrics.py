"""The verification domain's figures for ``/metrics`` (``core.metrics``).

CRL ages are read from the database at scrape time, so every worker and every instance
reports the same values.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from core.db import get_session, utcnow
from verification.errors import TrustAnchorsUnavailable
from verification.revocation import ca_crl_states, describe_ca


def crl_ages() -> Iterable[Metric]:
    age = GaugeMetricFamily(
        "licence_crl_age_seconds",
        "Seconds since the thisUpdate of each CA's current CRL.",
        labels=["ca"],
    )
    remaining = GaugeMetricFamily(
        "licence_crl_seconds_to_next_update",
        "Seconds until each CA's current CRL passes its nextUpdate (negative: stale, "
        "verifications of its cards answer revocation_unavailable).",
        labels=["ca"],
    )
    now = utcnow()
    try:
        states = ca_crl_states(get_session(), now)
    except TrustAnchorsUnavailable:
        states = []
    for state in states:
        if state.this_update is None or state.next_update is None:
            continue
        ca = describe_ca(state.authority, state.role)
        age.add_metric([ca], (now - state.this_update).total_seconds())
        remaining.add_metric([ca], (state.next_update - now).total_seconds())
    yield age
    yield remaining
