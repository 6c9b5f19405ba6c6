"""The verification domain's figures for ``/metrics`` (``core.metrics``).

CRL ages are read from the database at scrape time, so every worker and every instance
reports the same values.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from core.db import get_session, utcnow
from verification.errors import TrustAnchorsUnavailable
from verification.revocation import ca_crl_states, describe_ca

VERIFICATIONS = Counter(
    "licence_verifications",
    "Verifications by flow (direct: POST /v1/verifications; cross_device: the card app's "
    "answer) and result: the outcome, or the error code of a rejection.",
    ["flow", "result"],
)
IDENTITY_PLATFORM_DURATION = Histogram(
    "licence_identity_platform_duration_seconds",
    "Time the identity platform took to map a card certificate to agency codes.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


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
