"""Monitoring tests run with http webhooks on loopback and retries without waiting."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _monitoring_settings(monitoring_settings):
    pass
