"""The verification domain's figures in /metrics (verification/metrics.py)."""

from __future__ import annotations

import re


def test_crl_age_per_issuing_ca_is_read_at_scrape_time(http, publish_crl):
    publish_crl()

    body = http.get("/metrics").get_data(as_text=True)

    ages = re.findall(r'licence_crl_age_seconds\{ca="issuing CA [^"]*"\} (\S+)', body)
    remaining = re.findall(
        r'licence_crl_seconds_to_next_update\{ca="issuing CA [^"]*"\} (\S+)', body
    )
    assert len(ages) == 1 and 0 <= float(ages[0]) < 600
    assert len(remaining) == 1 and float(remaining[0]) > 3600


def _sample(body: str, series: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{series}\{{{re.escape(wanted)}\}} (\S+)$" if labels else rf"^{series} (\S+)$"
    found = re.findall(pattern, body, re.MULTILINE)
    return float(found[0]) if found else 0.0


def test_verifications_are_counted_by_outcome_and_error_code_with_identity_latency(
    http, verifier, licensed_holder, challenge, verify
):
    _, headers = verifier
    holder = licensed_holder("doctor")
    before = http.get("/metrics").get_data(as_text=True)

    issued = challenge(headers)
    assert verify(headers, holder.sign(issued["nonce"], issued["audience"])).status_code == 200
    replayed = verify(headers, holder.sign(issued["nonce"], issued["audience"]))
    assert replayed.json["code"] == "invalid_nonce"
    assert verify(headers, "a.b.c").status_code in (400, 401)

    after = http.get("/metrics").get_data(as_text=True)
    total = "licence_verifications_total"
    for result in ("licensed", "invalid_nonce"):
        counted = _sample(after, total, flow="direct", result=result)
        assert counted - _sample(before, total, flow="direct", result=result) == 1
    lookups = "licence_identity_platform_duration_seconds_count"
    assert _sample(after, lookups) - _sample(before, lookups) == 2
