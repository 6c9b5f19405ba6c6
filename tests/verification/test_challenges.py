"""POST /v1/challenges and the challenge store (shared with the holder flow)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.fixtures.verification import problem
from verification.challenges import (
    CHALLENGE_LIFETIME,
    ChallengePurpose,
    PeekedChallenge,
    consume_nonce,
    create_challenge,
    nonce_hash,
    peek_challenge,
    prune_challenges,
)
from verification.models import Challenge


def test_challenge_is_bound_to_client_and_profession(app, http, verifier, audience):
    client, headers = verifier
    before = datetime.now(UTC)
    response = http.post("/v1/challenges", json={"profession": "nurse"}, headers=headers)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {
        "challenge_id",
        "nonce",
        "audience",
        "profession",
        "expires_at",
        "request_uri",
        "status_uri",
    }
    assert body["audience"] == audience and body["profession"] == "nurse"
    assert len(base64.urlsafe_b64decode(body["nonce"] + "=")) * 8 >= 128
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert before + CHALLENGE_LIFETIME - timedelta(seconds=2) <= expires
    assert expires <= datetime.now(UTC) + CHALLENGE_LIFETIME

    from core.db import get_session

    with app.app_context():
        row = get_session().get(Challenge, body["challenge_id"])
        assert row.client_id == client.id and row.profession == "nurse"
        assert row.purpose is ChallengePurpose.VERIFIER
        # Only the hash of the nonce is stored.
        assert row.nonce_hash == nonce_hash(body["nonce"]) != body["nonce"]


def test_nonces_are_unique(http, verifier):
    _, headers = verifier
    nonces = {
        http.post("/v1/challenges", json={"profession": "doctor"}, headers=headers).get_json()[
            "nonce"
        ]
        for _ in range(20)
    }
    assert len(nonces) == 20


@pytest.mark.parametrize(
    "body", [{}, {"profession": "wizard"}, {"profession": 1}, {"profession": "doctor", "x": 1}]
)
def test_bad_profession_is_invalid_request(http, verifier, body):
    _, headers = verifier
    problem(http.post("/v1/challenges", json=body, headers=headers), 400, "invalid_request")


def test_challenges_need_the_verifier_role(http, regulator):
    _, headers = regulator
    problem(
        http.post("/v1/challenges", json={"profession": "doctor"}, headers=headers),
        403,
        "forbidden",
    )
    problem(http.post("/v1/challenges", json={"profession": "doctor"}), 401, "unauthenticated")


def test_consumption_is_single_use_and_bound(db_session):
    issued = create_challenge(
        db_session, ChallengePurpose.VERIFIER, client_id="hospital-a", profession="doctor"
    )
    # Another client, or the holder purpose: nothing happens, nothing is burned.
    assert consume_nonce(db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="b") is None
    assert consume_nonce(db_session, issued.nonce, ChallengePurpose.HOLDER) is None
    db_session.commit()
    consumed = consume_nonce(
        db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="hospital-a"
    )
    assert consumed is not None and consumed.profession == "doctor"
    db_session.commit()
    again = consume_nonce(
        db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="hospital-a"
    )
    assert again is None


def test_rolled_back_consumption_leaves_the_nonce_usable(db_session):
    issued = create_challenge(
        db_session, ChallengePurpose.VERIFIER, client_id="hospital-a", profession="doctor"
    )
    assert consume_nonce(
        db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="hospital-a"
    )
    db_session.rollback()
    assert consume_nonce(
        db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="hospital-a"
    )


def test_expired_nonce_is_not_consumed(db_session):
    now = datetime.now(UTC)
    issued = create_challenge(
        db_session, ChallengePurpose.VERIFIER, client_id="a", profession="doctor", now=now
    )
    later = now + CHALLENGE_LIFETIME
    assert (
        consume_nonce(db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="a", now=later)
        is None
    )
    just_before = later - timedelta(seconds=1)
    assert consume_nonce(
        db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="a", now=just_before
    )


def test_holder_challenges_have_no_client(db_session):
    issued = create_challenge(db_session, ChallengePurpose.HOLDER)
    assert issued.client_id is None and issued.profession is None
    assert consume_nonce(db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="a") is None
    assert consume_nonce(db_session, issued.nonce, ChallengePurpose.HOLDER) is not None
    with pytest.raises(ValueError):
        create_challenge(db_session, ChallengePurpose.HOLDER, client_id="a")
    with pytest.raises(ValueError):
        create_challenge(db_session, ChallengePurpose.VERIFIER, client_id="a")


@pytest.mark.parametrize("nonce", ["", "x" * 129, None, 12])
def test_odd_nonces_never_reach_the_database(db_session, nonce):
    assert consume_nonce(db_session, nonce, ChallengePurpose.HOLDER) is None
    assert peek_challenge(db_session, nonce, ChallengePurpose.HOLDER, client_id=None) is None


def test_peek_challenge_reads_only_the_callers_challenge(db_session):
    issued = create_challenge(
        db_session, ChallengePurpose.VERIFIER, client_id="a", profession="midwife"
    )
    assert peek_challenge(
        db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="a"
    ) == PeekedChallenge(issued.challenge_id, "midwife")
    assert (
        peek_challenge(db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="b") is None
    )
    assert consume_nonce(db_session, issued.nonce, ChallengePurpose.VERIFIER, client_id="a")


def test_prune_removes_long_expired_challenges(db_session):
    old = create_challenge(
        db_session,
        ChallengePurpose.HOLDER,
        now=datetime.now(UTC) - timedelta(days=2),
    )
    fresh = create_challenge(db_session, ChallengePurpose.HOLDER)
    assert prune_challenges(db_session) == 1
    remaining = set(db_session.scalars(select(Challenge.id)))
    assert fresh.challenge_id in remaining and old.challenge_id not in remaining


def test_prune_command_removes_only_long_expired_challenges(app, db_session):
    create_challenge(db_session, ChallengePurpose.HOLDER, now=datetime.now(UTC) - timedelta(days=3))
    fresh = create_challenge(db_session, ChallengePurpose.HOLDER)
    result = app.test_cli_runner().invoke(args=["challenges", "prune", "--days", "2"])
    assert result.exit_code == 0, result.output
    assert "removed 1 expired challenges" in result.output
    assert set(db_session.scalars(select(Challenge.id))) == {fresh.challenge_id}
