"""``TRUSTED_PROXIES``: whose X-Forwarded-For the service believes (core.proxies)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import create_app
from core.config import ConfigurationError, settings_from_env
from tests.fixtures.verification import problem


@given(st.one_of(st.text(max_size=6), st.integers(-5, 20), st.none()))
def test_the_setting_is_unset_or_a_small_ascii_count(tmp_path_factory, value):
    text = "" if value is None else str(value)
    if text == "":
        expected = 0
    elif text.isascii() and text.isdigit() and int(text) <= 10:
        expected = int(text)
    else:
        expected = None
    settings = {"INSTANCE_PATH": str(tmp_path_factory.getbasetemp() / "proxies")}
    if value is not None:
        settings["TRUSTED_PROXIES"] = value
    if expected is None:
        with pytest.raises(ConfigurationError, match="^TRUSTED_PROXIES must be"):
            settings_from_env(settings)
    else:
        assert settings_from_env(settings)["TRUSTED_PROXIES"] == expected


@pytest.fixture
def app_behind(app):
    made = []

    def _make(proxies: str):
        settings = {"TRUSTED_PROXIES": proxies, "HOLDER_RATE_LIMIT_CHALLENGES": "1 per minute"}
        behind = create_app({**app.config, "TESTING": True, **settings})
        made.append(behind)
        return behind.test_client()

    yield _make
    for behind in made:
        behind.extensions["db"].engine.dispose()


def _challenge(client, forwarded_for: str):
    return client.post(
        "/v1/holder/challenges",
        environ_base={"REMOTE_ADDR": "10.0.0.2"},  # the proxy
        headers={"X-Forwarded-For": forwarded_for},
    )


def test_behind_one_trusted_proxy_each_client_address_has_its_own_limit(app_behind):
    client = app_behind("1")
    assert _challenge(client, "198.51.100.7").status_code == 201
    assert _challenge(client, "198.51.100.8").status_code == 201
    problem(_challenge(client, "198.51.100.7"), 429, "rate_limited")


def test_a_client_cannot_choose_its_address_when_no_proxy_is_trusted(app_behind):
    client = app_behind("0")
    assert _challenge(client, "198.51.100.7").status_code == 201
    # Another forged X-Forwarded-For changes nothing: the proxy's address is counted.
    problem(_challenge(client, "198.51.100.8"), 429, "rate_limited")


def test_only_the_trusted_hops_are_believed(app_behind):
    client = app_behind("1")
    assert _challenge(client, "203.0.113.1, 198.51.100.9").status_code == 201
    # The client forged the left entry; the proxy appended the real one (right).
    problem(_challenge(client, "203.0.113.2, 198.51.100.9"), 429, "rate_limited")


def test_a_bad_setting_stops_start_up(app):
    with pytest.raises(ConfigurationError):
        create_app({**app.config, "TRUSTED_PROXIES": "all"})
