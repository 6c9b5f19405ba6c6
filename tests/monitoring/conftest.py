"""Monitoring tests run with http webhooks on loopback and retries without waiting."""

from __future__ import annotations

import pytest

from tests.holder.test_holder import sign_in  # noqa: F401 - the holder tests' fixture


@pytest.fixture(autouse=True)
def _monitoring_settings(monitoring_settings):
    pass
