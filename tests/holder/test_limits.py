"""Challenge floods and housekeeping (issue 14.10): outstanding challenges capped per
client and per address, rate limits keyed on an IPv6 /64, pruning inside the service."""

from __future__ import annotations

import ipaddress
import secrets
from datetime import UTC, datetime, timedelta

import time_machine
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.db import get_session
from core.rate_limits import address_bucket
from holder.housekeeping import prune
from holder.models import HolderSession
from tests.fixtures.verification import problem
from verification.challenges import ChallengePurpose, create_challenge
from verification.models import AccessRecord, Challenge


def _challenge(http, headers, kind="verification"):
    return http.post("/v1/challenges", json={"profession": "doctor", "kind": kind}, headers=headers)


def test_outstanding_challenges_are_capped_per_client(
    app, http, verifier, other_verifier, licensed_holder, verify, audience
):
    app.config["CHALLENGE_MAX_OUTSTANDING"] = 3
    nonces = [_challenge(http, verifier[1]).get_json()["nonce"] for _ in range(3)]
    refused = problem(_challenge(http, verifier[1]), 429, "rate_limited")
    assert "3 unexpired, unused challenges" in refused["detail"]
    assert _challenge(http, other_verifier[1]).status_code == 201  # per client
    # A used challenge no longer counts.
    holder = licensed_holder()
    assert verify(verifier[1], holder.sign(nonces[0], audience)).status_code == 200
    assert _challenge(http, verifier[1]).status_code == 201
    problem(_challenge(http, verifier[1]), 429, "rate_limited")
    # Nor does an expired one.
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5, seconds=1)):
        assert _challenge(http, verifier[1]).status_code == 201


def test_presentation_challenges_count_too(app, http, platform):
    app.config["CHALLENGE_MAX_OUTSTANDING"] = 2
    assert _challenge(http, platform[1], "presentation").status_code == 201
    assert _challenge(http, platform[1]).status_code == 201
    problem(_challenge(http, platform[1], "presentation"), 429, "rate_limited")


def test_holder_challenges_are_capped_per_address_bucket(app, http):
    app.config["CHALLENGE_MAX_OUTSTANDING"] = 2
    app.config["HOLDER_RATE_LIMIT_CHALLENGES"] = "100 per minute"
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        for address in ("2001:db8::1", "2001:db8::ffff"):
            assert http.post("/v1/holder/challenges", environ_base={"REMOTE_ADDR": address})
        same_64 = http.post("/v1/holder/challenges", environ_base={"REMOTE_ADDR": "2001:db8::2"})
        assert "2 unexpired sign-in challenges" in problem(same_64, 429, "rate_limited")["detail"]
        other_64 = http.post(
            "/v1/holder/challenges", environ_base={"REMOTE_ADDR": "2001:db8:0:1::1"}
        )
        assert other_64.status_code == 201
    with time_machine.travel(start + timedelta(minutes=5, seconds=1), tick=False):
        again = http.post("/v1/holder/challenges", environ_base={"REMOTE_ADDR": "2001:db8::3"})
        assert again.status_code == 201


def test_rate_limits_count_an_ipv6_64_as_one_address(app, http):
    app.config["HOLDER_RATE_LIMIT_CHALLENGES"] = "2 per minute"
    for address in ("2001:db8:1:2::1", "2001:db8:1:2:aaaa::7"):
        assert http.post("/v1/holder/challenges", environ_base={"REMOTE_ADDR": address})
    problem(
        http.post("/v1/holder/challenges", environ_base={"REMOTE_ADDR": "2001:db8:1:2::9"}),
        429,
        "rate_limited",
    )
    ok = http.post("/v1/holder/challenges", environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    assert ok.status_code == 201


@given(st.ip_addresses(v=6), st.integers(min_value=0, max_value=2**64 - 1))
def test_every_address_of_a_64_shares_one_bucket(address, host):
    if address.ipv4_mapped is not None:
        return
    network = ipaddress.IPv6Network((address, 64), strict=False)
    neighbour = network.network_address + host
    assert address_bucket(str(address)) == address_bucket(str(neighbour)) == str(network)


@given(st.ip_addresses(v=4))
def test_ipv4_addresses_are_their_own_bucket(address):
    assert address_bucket(str(address)) == str(address)
    assert address_bucket(f"::ffff:{address}") == str(address)


def test_odd_addresses_share_the_unknown_bucket():
    for junk in (None, "", "not an address", "1.2.3.4:80", "1.2.3.4.5", "2001:db8::1::1"):
        assert address_bucket(junk) == "unknown"


# --- housekeeping ----------------------------------------------------------------------


def _old_rows(app, now):
    """An expired challenge, an expired session, and access records old and recent."""
    with app.app_context():
        session = get_session()
        create_challenge(session, ChallengePurpose.HOLDER, now=now - timedelta(days=2))
        create_challenge(session, ChallengePurpose.HOLDER, now=now)
        session.add(
            HolderSession(
                id=secrets.token_hex(16),
                holder_code="h",
                card_chain=[],
                created_at=now - timedelta(days=2),
                expires_at=now - timedelta(days=2) + timedelta(minutes=10),
            )
        )
        retention = timedelta(days=int(app.config["ACCESS_LOG_RETENTION"]))
        for age in (retention + timedelta(days=1), retention - timedelta(days=1)):
            session.add(
                AccessRecord(
                    id=secrets.token_hex(16),
                    holder_code="h",
                    verifier_client_id="v",
                    verifier_name="V",
                    at=now - age,
                    outcome="licensed",
                )
            )
        session.commit()


def _counts(app) -> tuple[int, int, int]:
    with app.app_context():
        session = get_session()
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Challenge, HolderSession, AccessRecord)
        )


def test_prune_keeps_access_records_for_their_retention(app):
    assert app.config["ACCESS_LOG_RETENTION"] >= 5 * 365 + 1  # days: five years
    _old_rows(app, datetime.now(UTC))
    with app.app_context():
        pruned = prune(get_session(), app)
    assert (pruned.challenges, pruned.sessions, pruned.access_records) == (1, 1, 1)
    assert _counts(app) == (1, 0, 1)


def test_retention_is_a_number_of_days_from_the_environment(app):
    app.config["ACCESS_LOG_RETENTION"] = "30"  # as the environment gives it
    _old_rows(app, datetime.now(UTC))  # access records 31 and 29 days old
    with app.app_context():
        assert prune(get_session(), app).access_records == 1
    assert _counts(app)[2] == 1


def test_housekeeping_prune_command(app):
    _old_rows(app, datetime.now(UTC))
    result = app.test_cli_runner().invoke(args=["housekeeping", "prune"])
    assert result.exit_code == 0, result.output
    assert "removed 1 challenges, 1 sessions, 0 credential records and 1 access records" in (
        result.output
    )


def test_the_service_prunes_by_itself_after_a_response(app, http):
    _old_rows(app, datetime.now(UTC))
    http.get("/healthz").close()
    assert _counts(app) == (2, 1, 2)  # not due yet
    app.config["HOUSEKEEPING_INTERVAL"] = 0
    response = http.get("/healthz")
    assert _counts(app) == (2, 1, 2)  # runs once the response is sent, not before
    response.close()
    assert _counts(app) == (1, 0, 1)
