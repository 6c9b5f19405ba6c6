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
