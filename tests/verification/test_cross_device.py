"""The cross-device card flow: HR asks, the card app answers the signed card request,
HR reads the result (contract: "Cross-device card flow with verifier-name binding")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec

from core import jws
from core.db import get_session
from tests.fixtures.verification import problem
from verification.models import Challenge
from verification.schemas import VerificationOut


def _path(uri: str) -> str:
    return "/" + uri.split("/", 3)[3]


def _public_key(http, kid: str) -> ec.EllipticCurvePublicKey:
    keys = {key["kid"]: key for key in http.get("/.well-known/jwks.json").get_json()["keys"]}
    return jws.public_key_from_jwk(keys[kid], "ES256")


def _ask(http, headers, *, profession="doctor", monitoring=None) -> dict:
    body = {"profession": profession}
    if monitoring is not None:
        body["monitoring"] = monitoring
    response = http.post("/v1/challenges", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _card_request(http, issued) -> dict:
    response = http.get(_path(issued["request_uri"]))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/jwt"
    parsed = jws.parse_compact(response.get_data(as_text=True))
    assert parsed.header["typ"] == "card-request+jwt" and parsed.header["alg"] == "ES256"
    jws.verify_parsed(parsed, _public_key(http, parsed.header["kid"]), "ES256")
    return parsed.payload


def _stored(app, challenge_id: str) -> Challenge:
    with app.app_context():
        row = get_session().get(Challenge, challenge_id)
        get_session().expunge(row)
        return row


def test_challenge_gives_request_and_status_uris(app, http, verifier):
    client, headers = verifier
    issued = _ask(http, headers, monitoring=True)
    base = "http://127.0.0.1:8000"
    assert issued["request_uri"] == f"{base}/r/{issued['challenge_id']}"
    assert issued["status_uri"] == f"{base}/v1/challenges/{issued['challenge_id']}"


def test_card_request_is_signed_and_names_the_verifier(app, http, verifier, audience):
    client, headers = verifier
    issued = _ask(http, headers, profession="nurse", monitoring=True)
    claims = _card_request(http, issued)
    assert set(claims) == {
        "iss",
        "challenge_id",
        "nonce",
        "aud",
        "verifier",
        "profession",
        "consent",
        "response_uri",
        "iat",
        "exp",
    }
    assert claims["iss"] == audience and claims["aud"] == audience
    assert claims["challenge_id"] == issued["challenge_id"]
    assert claims["nonce"] == issued["nonce"]
    assert claims["verifier"] == {"id": client.id, "name": client.name}
    assert claims["profession"] == "nurse" and claims["consent"] == ["monitoring"]
    assert claims["response_uri"] == issued["status_uri"] + "/response"
    expires = datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
    assert claims["exp"] == int(expires.timestamp())
    assert _card_request(http, _ask(http, headers))["consent"] == []


def test_full_cross_device_verification(app, http, verifier, licensed_holder, audience):
    client, headers = verifier
    holder = licensed_holder("doctor")
    issued = _ask(http, headers, monitoring=True)
    pending = http.get(_path(issued["status_uri"]), headers=headers).get_json()
    assert pending == {"state": "pending", "verification": None, "error": None}
    request = _card_request(http, issued)
    assertion = holder.sign(
        request["nonce"], request["aud"], verifier=request["verifier"]["id"], consent=["monitoring"]
    )
    answer = http.post(_path(request["response_uri"]), json={"assertion": assertion})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    # The card app learns the outcome and who asked, nothing else.
    assert answer.get_json() == {
        "outcome": "licensed",
        "verifier": {"id": client.id, "name": client.name},
    }
    status = http.get(_path(issued["status_uri"]), headers=headers).get_json()
    assert status["state"] == "completed" and status["error"] is None
    verification = status["verification"]
    assert verification["outcome"] == "licensed"
    assert verification["holder"]["name"] == "山田 太郎" and verification["holder"]["subject"]
    # How fresh: the register's last change and the CRL used, both as RFC 3339 in UTC.
    assert verification["as_of"]["register"].endswith("Z")
    assert verification["as_of"]["revocation"].endswith("Z")
    assert VerificationOut().validate(verification) == {}
    assert jws.parse_compact(verification["receipt"]).payload["verifier"] == client.id
    # The consent the card signed and the challenge asked for: where monitoring starts.
    assert _stored(app, issued["challenge_id"]).consented_to == ["monitoring"]
    # The receipt is the service's, over the same facts, for this verifier's subject.
    receipt = jws.parse_compact(verification["receipt"])
    assert receipt.payload["sub"] == verification["holder"]["subject"]
    assert receipt.payload["verification_id"] == verification["verification_id"]
    # Kept without the verifier's code (this database keeps licensing codes only).
    kept = _stored(app, issued["challenge_id"]).verification
    assert "receipt" not in kept and "subject" not in kept["holder"]
    # Answered: no more card request; a replay is an invalid nonce.
    problem(http.get(_path(issued["request_uri"])), 404, "not_found")
    problem(
        http.post(_path(request["response_uri"]), json={"assertion": assertion}),
        401,
        "invalid_nonce",
    )
    assert http.get(_path(issued["status_uri"]), headers=headers).get_json()["state"] == (
        "completed"
    )


@pytest.mark.parametrize(
    ("asked", "signed"), [(False, ["monitoring"]), (True, None), (False, None)]
)
def test_consent_is_recorded_only_if_asked_and_signed(
    app, http, verifier, licensed_holder, audience, asked, signed
):
    client, headers = verifier
    holder = licensed_holder()
    issued = _ask(http, headers, monitoring=asked)
    assertion = holder.sign(issued["nonce"], audience, verifier=client.id, consent=signed or ())
    answer = http.post(_path(issued["status_uri"]) + "/response", json={"assertion": assertion})
    assert answer.status_code == 200
    assert _stored(app, issued["challenge_id"]).consented_to == []


def test_consent_is_not_recorded_for_not_licensed(app, http, verifier, licensed_holder, audience):
    client, headers = verifier
    holder = licensed_holder("nurse")
    issued = _ask(http, headers, profession="doctor", monitoring=True)
    assertion = holder.sign(issued["nonce"], audience, verifier=client.id, consent=["monitoring"])
    answer = http.post(_path(issued["status_uri"]) + "/response", json={"assertion": assertion})
    assert answer.get_json()["outcome"] == "not_licensed"
    assert _stored(app, issued["challenge_id"]).consented_to == []


@pytest.mark.parametrize(
    "consent", ["monitoring", ["monitoring", "monitoring"], ["everything"], [1], {"a": 1}]
)
def test_malformed_consent_is_an_invalid_assertion(
    http, verifier, licensed_holder, audience, forge, consent
):
    from tests.fixtures.verification import x5c_entry

    client, headers = verifier
    holder = licensed_holder()
    issued = _ask(http, headers, monitoring=True)
    now = int(datetime.now(UTC).timestamp())
    claims = {"aud": audience, "nonce": issued["nonce"], "iat": now, "exp": now + 60}
    claims |= {"verifier": client.id, "consent": consent}
    card = holder.card
    header = {
        "alg": "RS256",
        "typ": "card-assertion+jwt",
        "x5c": [x5c_entry(c) for c in [card.certificate, *card.chain]],
    }
    token = forge.token(header, claims, card.private_key)
    response = http.post(_path(issued["status_uri"]) + "/response", json={"assertion": token})
    problem(response, 401, "invalid_assertion")


@pytest.mark.parametrize("route", ["verifications", "card_app"])
def test_a_relayed_challenge_signed_for_another_verifier_fails(
    app, http, verifier, other_verifier, licensed_holder, audience, route, verify
):
    """A verifier relays its challenge to a holder who believes another verifier asks:
    the card signs the verifier it was shown, which is not the challenge's client."""
    client, headers = verifier
    other, _ = other_verifier
    holder = licensed_holder()
    issued = _ask(http, headers)
    relayed = holder.sign(issued["nonce"], audience, verifier=other.id)
    if route == "verifications":
        response = verify(headers, relayed)
    else:
        response = http.post(_path(issued["status_uri"]) + "/response", json={"assertion": relayed})
    body = problem(response, 401, "invalid_assertion")
    assert "verifier" in body["detail"]
    # The nonce is not burned; the right verifier claim verifies.
    honest = holder.sign(issued["nonce"], audience, verifier=client.id)
    assert verify(headers, honest).get_json()["outcome"] == "licensed"


def test_an_assertion_without_verifier_claim_still_works_on_both_routes(
    http, verifier, licensed_holder, audience, verify
):
    _, headers = verifier
    holder = licensed_holder()
    issued = _ask(http, headers)
    answer = http.post(
        _path(issued["status_uri"]) + "/response",
        json={"assertion": holder.sign(issued["nonce"], audience)},
    )
    assert answer.get_json()["outcome"] == "licensed"


def test_a_nonce_posted_to_another_challenges_response_uri_is_refused(
    http, verifier, licensed_holder, audience, verify
):
    client, headers = verifier
    holder = licensed_holder()
    first, second = _ask(http, headers), _ask(http, headers)
    assertion = holder.sign(first["nonce"], audience, verifier=client.id)
    response = http.post(_path(second["status_uri"]) + "/response", json={"assertion": assertion})
    body = problem(response, 401, "invalid_nonce")
    assert "new challenge" in body["detail"]  # issue 15.7: says what to do next
    # Neither challenge was consumed by it.
    assert verify(headers, assertion).status_code == 200
    assert http.get(_path(second["status_uri"]), headers=headers).get_json()["state"] == "rejected"


def test_rejection_the_card_signed_shows_in_the_status(
    app, http, verifier, licensed_holder, audience, card_authority, publish_crl
):
    client, headers = verifier
    holder = licensed_holder()
    card_authority.revoke(holder.card.serial)
    publish_crl()
    issued = _ask(http, headers)
    assertion = holder.sign(issued["nonce"], audience, verifier=client.id)
    response = http.post(_path(issued["status_uri"]) + "/response", json={"assertion": assertion})
    problem(response, 403, "card_revoked")
    status = http.get(_path(issued["status_uri"]), headers=headers).get_json()
    assert status["state"] == "rejected" and status["verification"] is None
    assert status["error"] == response.get_json()


def test_a_token_the_card_did_not_sign_leaves_the_status_pending(
    http, verifier, licensed_holder, audience, forge
):
    client, headers = verifier
    holder = licensed_holder()
    issued = _ask(http, headers)
    chain = [holder.card.certificate, *holder.card.chain]
    forged = forge.assertion(forge.key(), chain, issued["nonce"], audience)
    response = http.post(_path(issued["status_uri"]) + "/response", json={"assertion": forged})
    problem(response, 401, "invalid_assertion")
    assert http.get(_path(issued["status_uri"]), headers=headers).get_json()["state"] == "pending"


def test_status_is_for_the_verifier_that_asked_only(http, verifier, other_verifier, make_client):
    _, headers = verifier
    issued = _ask(http, headers)
    path = _path(issued["status_uri"])
    problem(http.get(path), 401, "unauthenticated")
    problem(http.get(path, headers=other_verifier[1]), 404, "not_found")
    problem(http.get(path, headers=make_client("regulator")[1]), 403, "forbidden")
    problem(http.get("/v1/challenges/" + "0" * 32, headers=headers), 404, "not_found")


def test_expired_challenge(http, verifier, licensed_holder, audience):
    client, headers = verifier
    holder = licensed_holder()
    issued = _ask(http, headers)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5, seconds=1)):
        status = http.get(_path(issued["status_uri"]), headers=headers).get_json()
        assert status == {"state": "expired", "verification": None, "error": None}
        problem(http.get(_path(issued["request_uri"])), 404, "not_found")
        assertion = holder.sign(issued["nonce"], audience, verifier=client.id)
        response = http.post(
            _path(issued["status_uri"]) + "/response", json={"assertion": assertion}
        )
        problem(response, 401, "invalid_nonce")


@pytest.mark.parametrize(
    "challenge_id",
    [
        "0" * 32,
        "x",
        "0" * 33,
        "%00",
        "%00" + "0" * 29,
        "A" * 32,
        "%1b%5b31m",
        "..%2f..%2fetc",
        "%E2%80%AEabc",
        "9" * 5000,
    ],
)
def test_hostile_challenge_ids(http, verifier, challenge_id):
    _, headers = verifier
    for response in (
        http.get(f"/r/{challenge_id}"),
        http.get(f"/v1/challenges/{challenge_id}", headers=headers),
        http.post(f"/v1/challenges/{challenge_id}/response", json={"assertion": "a.b.c"}),
    ):
        assert response.status_code == 404, (challenge_id, response.status_code)
        assert response.get_json()["code"] == "not_found"


def test_holder_challenges_have_no_card_request(app, http):
    holder_challenge = http.post("/v1/holder/challenges").get_json()
    with app.app_context():
        row = (
            get_session()
            .query(Challenge)
            .filter(
                Challenge.nonce_hash
                == __import__("hashlib").sha256(holder_challenge["nonce"].encode()).hexdigest()
            )
            .one()
        )
        challenge_id, stored_nonce = row.id, row.nonce
    assert stored_nonce is None  # a holder challenge keeps only the hash
    problem(http.get(f"/r/{challenge_id}"), 404, "not_found")


def test_hostile_bodies_on_the_response_route(http, verifier):
    _, headers = verifier
    path = _path(_ask(http, headers)["status_uri"]) + "/response"
    problem(http.post(path, json={}), 400, "invalid_request")
    problem(http.post(path, json={"assertion": "not a jws"}), 400, "invalid_request")


def test_public_card_routes_are_rate_limited(app, http, verifier):
    _, headers = verifier
    issued = _ask(http, headers)
    app.config["CARD_RATE_LIMIT_REQUESTS"] = "2 per minute"
    app.config["CARD_RATE_LIMIT_RESPONSES"] = "1 per minute"
    assert http.get(_path(issued["request_uri"])).status_code == 200
    assert http.get(_path(issued["request_uri"])).status_code == 200
    problem(http.get(_path(issued["request_uri"])), 429, "rate_limited")
    path = _path(issued["status_uri"]) + "/response"
    problem(http.post(path, json={}), 400, "invalid_request")
    problem(http.post(path, json={}), 429, "rate_limited")


def test_a_revoked_verifiers_challenge_cannot_be_answered(
    app, http, verifier, licensed_holder, audience
):
    from clients.service import revoke_client

    client, headers = verifier
    issued = _ask(http, headers)
    with app.app_context():
        revoke_client(get_session(), client.id)
    problem(http.get(_path(issued["request_uri"])), 404, "not_found")


def test_card_sign_cli_carries_verifier_and_consent(app, licensed_holder, tmp_path):
    from seed.cli import card_cli

    holder = licensed_holder()
    runner = app.test_cli_runner()
    result = runner.invoke(
        card_cli,
        [
            "sign",
            "--card",
            str(holder.card.path),
            "--pin",
            holder.card.pin,
            "--nonce",
            "n" * 43,
            "--verifier",
            "0123456789abcdef",
            "--consent",
            "monitoring",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = jws.parse_compact(result.output.strip()).payload
    assert payload["verifier"] == "0123456789abcdef" and payload["consent"] == ["monitoring"]
    for bad in (["--verifier", "ZZ\x1b[31m"], ["--consent", "everything"]):
        refused = runner.invoke(
            card_cli,
            ["sign", "--card", str(holder.card.path), "--pin", holder.card.pin, "--nonce", "n"]
            + bad,
        )
        assert refused.exit_code != 0 and "\x1b" not in refused.output
