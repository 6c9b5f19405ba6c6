"""Where the holder endpoints' rate limits are counted (``RATE_LIMIT_STORAGE_URI``)."""

from __future__ import annotations

import secrets
import socket

import pytest
from limits.errors import ConfigurationError

from app import create_app
from tests.fixtures.verification import problem

REDIS_URI = "redis://127.0.0.1:6379/0"


def _redis_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def make_app(app):
    """Further apps on the same database and instance folder as ``app``: the workers of
    one deployment. ``app`` deletes the rows afterwards."""
    made = []

    def _make(**settings):
        worker = create_app({**app.config, "TESTING": True, **settings})
        made.append(worker)
        return worker

    yield _make
    for worker in made:
        worker.extensions["db"].engine.dispose()


def _address() -> dict[str, str]:
    # A fresh documentation-range /64 per test (limits count per /64): counts in Redis
    # outlive the test.
    return {"REMOTE_ADDR": f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"}


@pytest.mark.skipif(not _redis_running(), reason="needs Redis on 127.0.0.1:6379")
def test_workers_sharing_a_redis_store_enforce_one_limit_together(make_app):
    settings = {"RATE_LIMIT_STORAGE_URI": REDIS_URI, "HOLDER_RATE_LIMIT_CHALLENGES": "2 per minute"}
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    address = _address()

    assert first.post("/v1/holder/challenges", environ_base=address).status_code == 201
    assert second.post("/v1/holder/challenges", environ_base=address).status_code == 201
    problem(first.post("/v1/holder/challenges", environ_base=address), 429, "rate_limited")
    problem(second.post("/v1/holder/challenges", environ_base=address), 429, "rate_limited")


def test_workers_with_the_default_memory_store_count_apart(make_app):
    settings = {"HOLDER_RATE_LIMIT_CHALLENGES": "1 per minute"}
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    address = _address()

    assert first.post("/v1/holder/challenges", environ_base=address).status_code == 201
    assert second.post("/v1/holder/challenges", environ_base=address).status_code == 201
    problem(first.post("/v1/holder/challenges", environ_base=address), 429, "rate_limited")


def test_an_unreachable_store_fails_closed_with_503(make_app):
    closed_port = "redis://127.0.0.1:1/0"
    client = make_app(RATE_LIMIT_STORAGE_URI=closed_port).test_client()
    response = client.post("/v1/holder/challenges", environ_base=_address())
    problem(response, 503, "unavailable")
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_a_malformed_store_uri_fails_at_start_up(make_app):
    with pytest.raises(ConfigurationError):
        make_app(RATE_LIMIT_STORAGE_URI="no-such-store://x")
