"""Holder features over HTTP: sign-in, access log, credentials, status lists, online
presentations, rate limits (issue 7)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from core import jws
from core.db import get_session
from core.signing import get_keyring
from holder import sd_jwt
from holder import status_list as sl
from holder.credentials import STATUS_LIST_CACHE_KEY, VCT
from tests.fixtures.holder import (
    PLATFORM_AUDIENCE,
    bearer,
    post_presentation,
    present,
    verify_status_list_token,
)
from tests.fixtures.verification import problem
from verification.models import Challenge, ChallengePurpose

#: Every sign-in is an entry in the holder's log (verifier, outcome, profession).
SIGN_IN = ("Holder sign-in with your card", "signed_in", None)


def status_of(http, credential: str, app) -> int:
    """The credential's entry in a status list built now (past any cached one's TTL)."""
    app.extensions.pop(STATUS_LIST_CACHE_KEY, None)
    payload = jws.parse_compact(sd_jwt.parse(credential).issuer_jwt).payload
    ref = payload["status"]["status_list"]
    path = ref["uri"].split("://", 1)[1].split("/", 1)[1]
    response = http.get("/" + path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/statuslist+jwt"
    with app.app_context():
        keyring = get_keyring(app)
        token = verify_status_list_token(
            response.get_data(as_text=True),
            public_key_for_kid=lambda kid: (
                keyring.key(kid).public_key if keyring.key(kid) else None
            ),
            expected_uri=ref["uri"],
            now=int(datetime.now(UTC).timestamp()),
        )
    return token.status(ref["idx"])


def regulator_action(http, headers, licence_id, action, **body):
    body.setdefault("reason", "test")
    response = http.post(f"/v1/licences/{licence_id}/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)


# --- challenges and sessions -------------------------------------------------------------


def test_holder_challenge_needs_no_token(http, holder_audience):
    response = http.post("/v1/holder/challenges")
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"nonce", "audience", "expires_at"}
    assert body["audience"] == holder_audience
    assert len(base64.urlsafe_b64decode(body["nonce"] + "==")) >= 16
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5)


def test_sign_in_gives_a_ten_minute_audience_bound_session(
    app, http, licensed_holder, audience, holder_audience
):
    holder = licensed_holder()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    response = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}
    )
    assert response.status_code == 201
    body = response.get_json()
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    parsed = jws.parse_compact(body["session_token"])
    assert parsed.header["typ"] == "holder-session+jwt" and parsed.header["alg"] == "ES256"
    assert parsed.payload["aud"] == audience
    assert parsed.payload["exp"] - parsed.payload["iat"] == 600
    # No personal data in the token: just a session id.
    assert set(parsed.payload) == {"iss", "aud", "sid", "iat", "exp"}
    assert holder.my_number not in json.dumps(parsed.payload)
    # The nonce is single-use.
    again = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}
    )
    problem(again, 401, "invalid_nonce")


@pytest.mark.parametrize(
    ("named", "status"), [("holder-portal", 201), ("0123456789abcdef0123456789abcdef", 401)]
)
def test_a_sign_in_may_name_the_holder_portal_and_no_other_verifier(
    http, licensed_holder, holder_audience, named, status
):
    holder = licensed_holder()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    response = http.post(
        "/v1/holder/sessions",
        json={"assertion": holder.sign(nonce, holder_audience, verifier=named)},
    )
    assert response.status_code == status, response.get_data(as_text=True)


def test_verifier_challenge_cannot_sign_a_holder_in(
    http, licensed_holder, verifier, challenge, audience, holder_audience
):
    holder = licensed_holder()
    nonce = challenge(verifier[1])["nonce"]
    # Signed for a verification: the purpose is wrong.
    response = http.post("/v1/holder/sessions", json={"assertion": holder.sign(nonce, audience)})
    problem(response, 401, "invalid_assertion")
    # Signed for a sign-in, over a verifier's nonce: the nonce is wrong.
    response = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}
    )
    problem(response, 401, "invalid_nonce")


def test_purpose_confusion_a_verification_assertion_cannot_open_a_holder_session(
    app, http, licensed_holder, verifier, verify, audience, holder_audience
):
    """Issue 14.1: a verifier hands the candidate a public holder nonce and has the card
    sign it as if for a verification; the verifier must not get a holder session."""
    holder = licensed_holder()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    stolen = holder.sign(nonce, audience)
    problem(http.post("/v1/holder/sessions", json={"assertion": stolen}), 401, "invalid_assertion")
    # Nor does a sign-in assertion serve a verification.
    problem(verify(verifier[1], holder.sign(nonce, holder_audience)), 401, "invalid_assertion")
    # The holder's real sign-in still works with that nonce, and is in the log.
    response = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}
    )
    assert response.status_code == 201
    token = response.get_json()["session_token"]
    log = http.get("/v1/holder/access-log", headers=bearer(token)).get_json()["entries"]
    assert ("Holder sign-in with your card", "signed_in") in [
        (e["verifier"], e["outcome"]) for e in log
    ]


def test_holder_nonce_cannot_be_used_for_a_verification(
    http, licensed_holder, verifier, verify, audience
):
    holder = licensed_holder()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    problem(verify(verifier[1], holder.sign(nonce, audience)), 401, "invalid_nonce")


def test_sign_in_rejects_bad_assertions(http, licensed_holder, holder_audience, forge):
    holder = licensed_holder()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    problem(http.post("/v1/holder/sessions", json={"assertion": "a.b"}), 400, "invalid_request")
    problem(http.post("/v1/holder/sessions", json={}), 400, "invalid_request")
    wrong_aud = holder.sign(nonce, "urn:someone-else")
    problem(
        http.post("/v1/holder/sessions", json={"assertion": wrong_aud}), 401, "invalid_assertion"
    )
    # An impostor's key with the holder's certificate.
    impostor = forge.assertion(
        forge.key(), [holder.card.certificate, *holder.card.chain], nonce, holder_audience
    )
    problem(
        http.post("/v1/holder/sessions", json={"assertion": impostor}), 401, "invalid_assertion"
    )
    # The failures did not burn the nonce.
    ok = http.post("/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)})
    assert ok.status_code == 201


def test_unknown_card_gets_no_session(http, issue_card, publish_crl, holder_audience):
    card = issue_card()  # not registered with the identity platform
    publish_crl()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    response = http.post(
        "/v1/holder/sessions", json={"assertion": card.sign(nonce=nonce, audience=holder_audience)}
    )
    problem(response, 403, "unknown_holder")


def test_revoked_card_gets_no_session(
    http, licensed_holder, card_authority, publish_crl, holder_audience
):
    holder = licensed_holder()
    card_authority.revoke(holder.card.serial)
    publish_crl()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    problem(
        http.post("/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}),
        403,
        "card_revoked",
    )


def test_rejected_sign_in_with_a_known_card_shows_in_its_log(
    http, licensed_holder, sign_in, holder_audience
):
    holder = licensed_holder()
    stale = http.post("/v1/holder/challenges").get_json()["nonce"]
    assert (
        http.post(
            "/v1/holder/sessions", json={"assertion": holder.sign(stale, holder_audience)}
        ).status_code
        == 201
    )
    # Someone replays the card's assertion: rejected, and the holder sees it.
    replay = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(stale, holder_audience)}
    )
    problem(replay, 401, "invalid_nonce")
    log = http.get("/v1/holder/access-log", headers=bearer(sign_in(holder))).get_json()["entries"]
    assert [(e["verifier"], e["outcome"], e["profession"]) for e in log] == [
        ("Holder sign-in with your card", "signed_in", None),
        ("Holder sign-in with your card", "invalid_nonce", None),
        ("Holder sign-in with your card", "signed_in", None),
    ]


@pytest.mark.parametrize(
    "path,method", [("/v1/holder/access-log", "get"), ("/v1/holder/credentials", "post")]
)
def test_holder_endpoints_refuse_client_tokens_and_junk(http, verifier, path, method, app):
    call = getattr(http, method)
    kwargs = {"json": {"profession": "doctor"}} if method == "post" else {}
    problem(call(path, **kwargs), 401, "unauthenticated")
    problem(call(path, headers=verifier[1], **kwargs), 401, "unauthenticated")
    problem(call(path, headers=bearer("x.y.z"), **kwargs), 401, "unauthenticated")
    with app.app_context():
        # A receipt (or any other token we signed) is not a session token.
        other = get_keyring(app).sign(
            {"sid": "x", "aud": app.config["SERVICE_AUDIENCE"]}, "verification-receipt+jwt"
        )
    problem(call(path, headers=bearer(other), **kwargs), 401, "unauthenticated")


def test_session_token_expires_after_ten_minutes(http, licensed_holder, sign_in):
    token = sign_in(licensed_holder())
    assert http.get("/v1/holder/access-log", headers=bearer(token)).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=10, seconds=1)):
        problem(http.get("/v1/holder/access-log", headers=bearer(token)), 401, "unauthenticated")


def test_tampered_session_token_is_refused(http, licensed_holder, sign_in):
    token = sign_in(licensed_holder())
    header, payload, signature = token.split(".")
    claims = json.loads(jws.b64url_decode(payload))
    claims["exp"] += 3600
    forged = f"{header}.{jws.b64url_encode(json.dumps(claims).encode())}.{signature}"
    problem(http.get("/v1/holder/access-log", headers=bearer(forged)), 401, "unauthenticated")


def test_session_token_is_not_a_client_token(http, licensed_holder, sign_in):
    token = sign_in(licensed_holder())
    problem(
        http.post("/v1/challenges", json={"profession": "doctor"}, headers=bearer(token)),
        401,
        "unauthenticated",
    )


# --- access log ------------------------------------------------------------------------


def test_access_log_lists_checks_newest_first_with_rejections(
    http, licensed_holder, sign_in, verifier, other_verifier, challenge, verify, audience
):
    holder = licensed_holder("nurse")
    start = datetime.now(UTC)
    ok = verify(verifier[1], holder.sign(challenge(verifier[1], "nurse")["nonce"], audience))
    assert ok.status_code == 200
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        # A rejected attempt with the holder's card: another verifier's nonce.
        stolen = holder.sign(challenge(verifier[1], "doctor")["nonce"], audience)
        problem(verify(other_verifier[1], stolen), 401, "invalid_nonce")
    with time_machine.travel(start + timedelta(minutes=2)):
        token = sign_in(holder)
        body = http.get("/v1/holder/access-log", headers=bearer(token)).get_json()
    assert body["next_cursor"] is None
    assert [(e["verifier"], e["outcome"], e["profession"]) for e in body["entries"]] == [
        SIGN_IN,
        ("Kameda General Hospital HR", "invalid_nonce", None),
        ("St Luke's HR", "licensed", "nurse"),
    ]
    assert all(e["at"].endswith("Z") for e in body["entries"])
    assert set(body["entries"][0]) == {"verifier", "at", "profession", "outcome"}


def test_access_log_is_paginated(
    http, licensed_holder, sign_in, verifier, challenge, verify, audience
):
    holder = licensed_holder()
    start = datetime.now(UTC)
    for minute in range(5):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            assert (
                verify(
                    verifier[1], holder.sign(challenge(verifier[1])["nonce"], audience)
                ).status_code
                == 200
            )
    token = sign_in(holder)
    seen, cursor = [], None
    for _ in range(5):
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = http.get(
            "/v1/holder/access-log", query_string=query, headers=bearer(token)
        ).get_json()
        seen += [e["at"] for e in body["entries"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)  # 5 checks, 1 sign-in
    problem(
        http.get("/v1/holder/access-log", query_string={"cursor": "!!"}, headers=bearer(token)),
        400,
        "invalid_request",
    )
    problem(
        http.get("/v1/holder/access-log", query_string={"limit": 0}, headers=bearer(token)),
        400,
        "invalid_request",
    )


def test_one_holder_cannot_read_another_holders_log(
    http, licensed_holder, sign_in, verifier, challenge, verify, audience
):
    alice, bob = licensed_holder(name="Alice"), licensed_holder(name="Bob")
    assert (
        verify(verifier[1], alice.sign(challenge(verifier[1])["nonce"], audience)).status_code
        == 200
    )
    bob_token = sign_in(bob)
    bob_log = http.get("/v1/holder/access-log", headers=bearer(bob_token)).get_json()["entries"]
    assert [(e["verifier"], e["outcome"], e["profession"]) for e in bob_log] == [SIGN_IN]
    # No parameter names a holder: the session alone decides whose log it is.
    body = http.get(
        "/v1/holder/access-log", query_string={"holder": alice.my_number}, headers=bearer(bob_token)
    ).get_json()
    assert body["entries"] == bob_log
    alice_token = sign_in(alice)
    assert (
        len(http.get("/v1/holder/access-log", headers=bearer(alice_token)).get_json()["entries"])
        == 2  # the verification and this sign-in
    )


# --- credentials and status lists ------------------------------------------------------


def test_credential_is_an_sd_jwt_vc_bound_to_the_card(
    app, http, licensed_holder, get_credential, audience
):
    holder = licensed_holder()
    credential = get_credential(holder)
    parsed = sd_jwt.parse(credential)
    header = jws.parse_compact(parsed.issuer_jwt).header
    payload = jws.parse_compact(parsed.issuer_jwt).payload
    with app.app_context():
        assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": get_keyring(app).active.kid}
    assert payload["vct"] == VCT and payload["iss"] == audience
    assert payload["profession"] == "doctor" and payload["licence_status"] == "active"
    assert payload["cnf"]["jwk"] == sd_jwt.rsa_public_jwk(holder.card.certificate.public_key())
    assert 0 < payload["exp"] - payload["iat"] <= 24 * 3600
    ref = payload["status"]["status_list"]
    assert ref["uri"].startswith("http") and "/v1/status-lists/" in ref["uri"]
    assert 0 <= ref["idx"] < 8192
    # Name and registration year are selectively disclosable, not in clear.
    raw = json.dumps(payload, ensure_ascii=False)
    assert "山田" not in raw and "2011" not in raw
    names = {sd_jwt.parse_disclosure(d).name for d in parsed.disclosures}
    assert names == {"name", "registered_year"}
    # No My Number, licence id or registration number anywhere.
    for licence in holder.licences:
        assert licence.registration_number not in credential
        assert licence.id not in credential
    assert status_of(http, credential, app) == sl.STATUS_VALID


def test_credentials_only_for_an_active_licence_of_that_profession(
    app, http, licensed_holder, sign_in, regulator
):
    holder = licensed_holder("nurse")
    token = sign_in(holder)
    problem(
        http.post("/v1/holder/credentials", json={"profession": "doctor"}, headers=bearer(token)),
        404,
        "not_licensed",
    )
    problem(
        http.post(
            "/v1/holder/credentials", json={"profession": "astronaut"}, headers=bearer(token)
        ),
        400,
        "invalid_request",
    )
    regulator_action(
        http,
        regulator[1],
        holder.licences[0].id,
        "suspend",
        until=(date.today() + timedelta(days=30)).isoformat(),
    )
    problem(
        http.post("/v1/holder/credentials", json={"profession": "nurse"}, headers=bearer(token)),
        409,
        "licence_not_active",
    )


def test_status_list_follows_regulator_actions(
    app, http, licensed_holder, get_credential, regulator
):
    holder = licensed_holder()
    credential = get_credential(holder)
    licence_id = holder.licences[0].id
    assert status_of(http, credential, app) == sl.STATUS_VALID
    regulator_action(
        http,
        regulator[1],
        licence_id,
        "suspend",
        until=(date.today() + timedelta(days=30)).isoformat(),
    )
    assert status_of(http, credential, app) == sl.STATUS_SUSPENDED
    regulator_action(http, regulator[1], licence_id, "reinstate")
    assert status_of(http, credential, app) == sl.STATUS_VALID
    regulator_action(http, regulator[1], licence_id, "revoke")
    assert status_of(http, credential, app) == sl.STATUS_INVALID


def test_a_reprimand_keeps_the_credential_and_death_invalidates_it(
    app, http, licensed_holder, get_credential, sign_in, regulator
):
    holder = licensed_holder()
    credential = get_credential(holder)
    licence_id = holder.licences[0].id
    reprimand = http.post(
        f"/v1/licences/{licence_id}/reprimands",
        json={"reason": "戒告", "on": date.today().isoformat()},
        headers=regulator[1],
    )
    assert reprimand.status_code == 201
    assert status_of(http, credential, app) == sl.STATUS_VALID
    regulator_action(http, regulator[1], licence_id, "deceased")
    assert status_of(http, credential, app) == sl.STATUS_INVALID
    problem(
        http.post(
            "/v1/holder/credentials", json={"profession": "doctor"}, headers=bearer(sign_in(holder))
        ),
        409,
        "licence_not_active",
    )


def test_status_list_follows_card_revocation(
    app, http, licensed_holder, get_credential, card_authority, publish_crl
):
    holder = licensed_holder()
    credential = get_credential(holder)
    card_authority.report_lost(holder.card.serial)
    publish_crl()
    assert status_of(http, credential, app) == sl.STATUS_SUSPENDED
    card_authority.resume(holder.card.serial)
    publish_crl()
    assert status_of(http, credential, app) == sl.STATUS_VALID
    card_authority.revoke(holder.card.serial)
    publish_crl()
    assert status_of(http, credential, app) == sl.STATUS_INVALID


def test_status_list_fails_closed_when_the_crl_is_stale(
    app, http, licensed_holder, get_credential, publish_crl
):
    holder = licensed_holder()
    credential = get_credential(holder)
    publish_crl(validity=timedelta(hours=1))
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=50)):
        assert status_of(http, credential, app) == sl.STATUS_VALID
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1, minutes=5)):
        # The CRL is past its nextUpdate: unknown, so not valid (but not final).
        assert status_of(http, credential, app) == sl.STATUS_SUSPENDED


def test_status_list_entries_are_independent(app, http, licensed_holder, get_credential, regulator):
    alice, bob = licensed_holder(name="Alice"), licensed_holder(name="Bob")
    alice_credential, bob_credential = get_credential(alice), get_credential(bob)
    regulator_action(http, regulator[1], alice.licences[0].id, "revoke")
    assert status_of(http, alice_credential, app) == sl.STATUS_INVALID
    assert status_of(http, bob_credential, app) == sl.STATUS_VALID


def test_status_list_token_shape(app, http, licensed_holder, get_credential):
    credential = get_credential(licensed_holder())
    ref = jws.parse_compact(sd_jwt.parse(credential).issuer_jwt).payload["status"]["status_list"]
    response = http.get("/v1/status-lists/" + ref["uri"].rsplit("/", 1)[1])
    token = response.get_data(as_text=True)
    parsed = jws.parse_compact(token)
    assert parsed.header["typ"] == "statuslist+jwt" and parsed.header["alg"] == "ES256"
    claims = parsed.payload
    assert claims["sub"] == ref["uri"]
    assert claims["status_list"]["bits"] == 2
    assert 0 < claims["ttl"] <= 300 and claims["exp"] > claims["iat"]
    with app.app_context():
        assert parsed.header["kid"] in {k["kid"] for k in get_keyring(app).jwks()["keys"]}


def test_unknown_status_list_is_404(http):
    problem(http.get("/v1/status-lists/0123456789abcdef"), 404, "not_found")


# --- online presentations --------------------------------------------------------------


def test_presentation_checked_online_with_disclosed_claims_only(
    http, licensed_holder, get_credential, platform, online_check, sign_in
):
    holder = licensed_holder(name="佐藤 花子")
    credential = get_credential(holder)
    response = online_check(platform, credential, holder, disclose=["registered_year"])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["outcome"] == "licensed" and body["profession"] == "doctor"
    assert body["holder"]["name"] is None  # not disclosed: stays hidden online too
    assert body["holder"]["subject"]
    assert body["licence"] == {"status": "active", "registered_year": 2011, "suspended_until": None}
    assert "佐藤" not in response.get_data(as_text=True)
    receipt = jws.parse_compact(body["receipt"])
    assert receipt.header["typ"] == "verification-receipt+jwt"
    assert receipt.payload["verification_id"] == body["verification_id"]
    assert receipt.payload["sub"] == body["holder"]["subject"]
    full = online_check(platform, credential, holder).get_json()
    assert full["holder"]["name"] == "佐藤 花子"
    # The same pairwise code as a card verification by this verifier would give.
    assert full["holder"]["subject"] == body["holder"]["subject"]
    log = http.get("/v1/holder/access-log", headers=bearer(sign_in(holder))).get_json()["entries"]
    assert [(e["verifier"], e["outcome"], e["profession"]) for e in log] == [
        SIGN_IN,
        ("Telemed Platform", "licensed", "doctor"),
        ("Telemed Platform", "licensed", "doctor"),
        ("Credential issued for your card", "credential_issued", "doctor"),
        SIGN_IN,
    ]


def test_presentation_challenge_gives_the_callers_registered_audience(
    app, http, platform, other_platform, verifier, presentation_challenge
):
    body = presentation_challenge(platform[1])
    assert body["audience"] == platform[2] and body["profession"] == "doctor"
    # The card app answers only verification challenges: no card request to point at.
    assert "request_uri" not in body and "status_uri" not in body
    with_monitoring = http.post(
        "/v1/challenges",
        json={"profession": "doctor", "kind": "presentation", "monitoring": True},
        headers=platform[1],
    )
    assert with_monitoring.status_code == 201
    with app.app_context():
        stored = get_session().get(Challenge, with_monitoring.get_json()["challenge_id"])
        assert stored.purpose is ChallengePurpose.PRESENTATION
        assert not stored.monitoring_requested
    assert presentation_challenge(other_platform[1])["audience"] == other_platform[2]
    # A verifier without a registered audience is told how to get one.
    refused = http.post(
        "/v1/challenges", json={"profession": "doctor", "kind": "presentation"}, headers=verifier[1]
    )
    assert "--audience" in problem(refused, 403, "forbidden")["detail"]
    for kind in ("", "PRESENTATION", "presentation\x00", 1, None, ["presentation"]):
        bad = http.post(
            "/v1/challenges", json={"profession": "doctor", "kind": kind}, headers=platform[1]
        )
        problem(bad, 400, "invalid_request")


def test_pairwise_subject_differs_per_verifier(
    licensed_holder, get_credential, platform, other_platform, online_check
):
    holder = licensed_holder()
    credential = get_credential(holder)
    a = online_check(platform, credential, holder).get_json()
    b = online_check(other_platform, credential, holder).get_json()
    assert a["holder"]["subject"] != b["holder"]["subject"]


def test_presentation_is_accepted_once(
    http, licensed_holder, get_credential, platform, presentation_challenge, sign_in
):
    holder = licensed_holder()
    issued = presentation_challenge(platform[1])
    nonce, audience = issued["nonce"], issued["audience"]
    presentation = present(get_credential(holder), holder, nonce=nonce, audience=audience)
    ok = post_presentation(http, platform[1], presentation, nonce, audience)
    assert ok.status_code == 200, ok.get_data(as_text=True)
    replay = post_presentation(http, platform[1], presentation, nonce, audience)
    assert "new one" in problem(replay, 401, "invalid_presentation")["detail"]
    log = http.get("/v1/holder/access-log", headers=bearer(sign_in(holder))).get_json()["entries"]
    assert [e["outcome"] for e in log] == [
        "signed_in",
        "invalid_presentation",
        "licensed",
        "credential_issued",
        "signed_in",
    ]


def test_presentation_made_for_another_verifier_is_refused(
    http, licensed_holder, get_credential, platform, other_platform, presentation_challenge
):
    holder = licensed_holder()
    issued = presentation_challenge(platform[1])
    nonce, audience = issued["nonce"], issued["audience"]
    presentation = present(get_credential(holder), holder, nonce=nonce, audience=audience)
    # The other verifier submits it: the audience is not theirs, nor is the nonce.
    stolen = post_presentation(http, other_platform[1], presentation, nonce, audience)
    problem(stolen, 401, "invalid_presentation")
    # The rightful verifier still can (the refusal consumed nothing).
    assert post_presentation(http, platform[1], presentation, nonce, audience).status_code == 200


def test_nonce_issued_to_another_client_is_refused(
    http,
    licensed_holder,
    get_credential,
    platform,
    other_platform,
    presentation_challenge,
    challenge,
):
    holder = licensed_holder()
    credential = get_credential(holder)
    # The other platform's nonce, with the caller's own audience.
    foreign = presentation_challenge(other_platform[1])["nonce"]
    presentation = present(credential, holder, nonce=foreign, audience=platform[2])
    problem(
        post_presentation(http, platform[1], presentation, foreign, platform[2]),
        401,
        "invalid_presentation",
    )
    # A verification challenge of the caller's is no presentation nonce either.
    card_nonce = challenge(platform[1])["nonce"]
    presentation = present(credential, holder, nonce=card_nonce, audience=platform[2])
    problem(
        post_presentation(http, platform[1], presentation, card_nonce, platform[2]),
        401,
        "invalid_presentation",
    )
    # Nor is a made-up nonce, nor one asked for another profession.
    for nonce in ("made-up", presentation_challenge(platform[1], "nurse")["nonce"]):
        presentation = present(credential, holder, nonce=nonce, audience=platform[2])
        problem(
            post_presentation(http, platform[1], presentation, nonce, platform[2]),
            401,
            "invalid_presentation",
        )


def test_presentation_nonce_expires(
    http, licensed_holder, get_credential, platform, presentation_challenge
):
    holder = licensed_holder()
    credential = get_credential(holder)
    issued = presentation_challenge(platform[1])
    later = datetime.now(UTC) + timedelta(minutes=5, seconds=1)
    with time_machine.travel(later):
        presentation = present(
            credential, holder, nonce=issued["nonce"], audience=issued["audience"], at=later
        )
        response = post_presentation(
            http, platform[1], presentation, issued["nonce"], issued["audience"]
        )
        problem(response, 401, "invalid_presentation")


def test_presentation_without_key_binding_is_rejected_and_logged(
    http, licensed_holder, get_credential, platform, presentation_challenge, sign_in
):
    holder = licensed_holder()
    credential = get_credential(holder)  # a forwarded credential, without the card
    issued = presentation_challenge(platform[1])
    problem(
        post_presentation(http, platform[1], credential, issued["nonce"], issued["audience"]),
        401,
        "invalid_presentation",
    )
    log = http.get("/v1/holder/access-log", headers=bearer(sign_in(holder))).get_json()["entries"]
    assert [(e["verifier"], e["outcome"]) for e in log] == [
        SIGN_IN[:2],
        ("Telemed Platform", "invalid_presentation"),
        ("Credential issued for your card", "credential_issued"),
        SIGN_IN[:2],
    ]


def test_presentation_signed_by_another_card_is_rejected(
    licensed_holder, get_credential, platform, online_check
):
    holder, thief = licensed_holder(), licensed_holder()
    credential = get_credential(holder)
    problem(online_check(platform, credential, thief), 401, "invalid_presentation")


def test_presentation_for_another_nonce_or_audience_is_rejected(
    http, licensed_holder, get_credential, platform, presentation_challenge
):
    holder = licensed_holder()
    issued = presentation_challenge(platform[1])
    nonce, audience = issued["nonce"], issued["audience"]
    presentation = present(get_credential(holder), holder, nonce=nonce, audience=audience)
    other_nonce = presentation_challenge(platform[1])["nonce"]
    problem(
        post_presentation(http, platform[1], presentation, other_nonce, audience),
        401,
        "invalid_presentation",
    )
    problem(
        post_presentation(http, platform[1], presentation, nonce, "https://evil.example"),
        401,
        "invalid_presentation",
    )
    assert post_presentation(http, platform[1], presentation, nonce, audience).status_code == 200


def test_expired_credential_is_rejected(
    licensed_holder, get_credential, platform, online_check, publish_crl
):
    holder = licensed_holder()
    credential = get_credential(holder)
    later = datetime.now(UTC) + timedelta(hours=25)
    with time_machine.travel(later):
        publish_crl()
        problem(online_check(platform, credential, holder, at=later), 401, "invalid_presentation")


def test_tampered_presentation_is_rejected(
    http, licensed_holder, get_credential, platform, presentation_challenge
):
    holder = licensed_holder()
    credential = get_credential(holder)
    issued = presentation_challenge(platform[1])
    nonce, audience = issued["nonce"], issued["audience"]
    presentation = present(
        credential, holder, nonce=nonce, audience=audience, disclose=["registered_year"]
    )
    parsed = sd_jwt.parse(presentation)
    forged_name = sd_jwt.make_disclosure("name", "Dr. Impostor").encoded
    tampered = parsed.sd_jwt + forged_name + "~" + parsed.key_binding_jwt
    problem(
        post_presentation(http, platform[1], tampered, nonce, audience), 401, "invalid_presentation"
    )
    problem(
        post_presentation(http, platform[1], "not an sd-jwt", nonce, audience),
        400,
        "invalid_request",
    )
    # Nothing was consumed by the refusals.
    assert post_presentation(http, platform[1], presentation, nonce, audience).status_code == 200


def test_presentations_need_the_verifier_role(
    http, licensed_holder, get_credential, platform, presentation_challenge, regulator
):
    holder = licensed_holder()
    issued = presentation_challenge(platform[1])
    nonce, audience = issued["nonce"], issued["audience"]
    presentation = present(get_credential(holder), holder, nonce=nonce, audience=audience)
    problem(post_presentation(http, regulator[1], presentation, nonce, audience), 403, "forbidden")
    problem(post_presentation(http, {}, presentation, nonce, audience), 401, "unauthenticated")


def test_presentation_reports_live_status(
    http,
    licensed_holder,
    get_credential,
    platform,
    online_check,
    regulator,
    card_authority,
    publish_crl,
):
    holder = licensed_holder()
    credential = get_credential(holder)
    regulator_action(http, regulator[1], holder.licences[0].id, "suspend", until="2099-12-31")
    body = online_check(platform, credential, holder).get_json()
    assert body["outcome"] == "suspended" and body["licence"]["suspended_until"] == "2099-12-31"
    regulator_action(http, regulator[1], holder.licences[0].id, "revoke")
    body = online_check(platform, credential, holder).get_json()
    assert body["outcome"] == "revoked" and body["licence"]["status"] == "revoked"
    card_authority.revoke(holder.card.serial)
    publish_crl()
    problem(online_check(platform, credential, holder), 403, "card_revoked")


# --- rate limits ----------------------------------------------------------------------


def test_public_holder_endpoints_are_rate_limited_per_address(app, http):
    app.config["HOLDER_RATE_LIMIT_CHALLENGES"] = "2 per minute"
    a = {"REMOTE_ADDR": "192.0.2.10"}
    b = {"REMOTE_ADDR": "192.0.2.11"}
    assert http.post("/v1/holder/challenges", environ_base=a).status_code == 201
    assert http.post("/v1/holder/challenges", environ_base=a).status_code == 201
    limited = http.post("/v1/holder/challenges", environ_base=a)
    problem(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"]
    assert http.post("/v1/holder/challenges", environ_base=b).status_code == 201
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=1, seconds=1)):
        assert http.post("/v1/holder/challenges", environ_base=a).status_code == 201


def test_sign_in_is_rate_limited_before_parsing(app, http):
    app.config["HOLDER_RATE_LIMIT_SESSIONS"] = "1 per minute"
    problem(http.post("/v1/holder/sessions", json={}), 400, "invalid_request")
    problem(http.post("/v1/holder/sessions", json={}), 429, "rate_limited")


def test_status_lists_are_rate_limited(app, http):
    app.config["HOLDER_RATE_LIMIT_STATUS_LISTS"] = "1 per minute"
    problem(http.get("/v1/status-lists/abc"), 404, "not_found")
    problem(http.get("/v1/status-lists/abc"), 429, "rate_limited")


# --- session end ------------------------------------------------------------------------


def test_sign_out_ends_the_session(http, licensed_holder, sign_in):
    holder = licensed_holder()
    token, other = sign_in(holder), sign_in(holder)
    assert http.delete("/v1/holder/sessions", headers=bearer(token)).status_code == 204
    problem(http.get("/v1/holder/access-log", headers=bearer(token)), 401, "unauthenticated")
    problem(http.delete("/v1/holder/sessions", headers=bearer(token)), 401, "unauthenticated")
    # Only that session: the holder's other session still works.
    assert http.get("/v1/holder/access-log", headers=bearer(other)).status_code == 200
    problem(http.delete("/v1/holder/sessions"), 401, "unauthenticated")


@pytest.mark.parametrize("action", ["report_lost", "revoke"])
def test_session_stops_when_its_card_is_on_hold_or_revoked(
    http, licensed_holder, sign_in, card_authority, publish_crl, action
):
    holder, other = licensed_holder(), licensed_holder()
    token, other_token = sign_in(holder), sign_in(other)
    assert http.get("/v1/holder/access-log", headers=bearer(token)).status_code == 200
    getattr(card_authority, action)(holder.card.serial)
    publish_crl()
    for call in (
        lambda: http.get("/v1/holder/access-log", headers=bearer(token)),
        lambda: http.post(
            "/v1/holder/credentials", json={"profession": "doctor"}, headers=bearer(token)
        ),
    ):
        assert "card is on hold or revoked" in problem(call(), 401, "unauthenticated")["detail"]
    assert http.get("/v1/holder/access-log", headers=bearer(other_token)).status_code == 200


def test_session_stops_when_the_crl_goes_stale(http, licensed_holder, sign_in, publish_crl):
    holder = licensed_holder()
    publish_crl(validity=timedelta(minutes=8))
    token = sign_in(holder)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5)):
        assert http.get("/v1/holder/access-log", headers=bearer(token)).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=9)):  # session: 10 minutes
        stale = problem(
            http.get("/v1/holder/access-log", headers=bearer(token)), 401, "unauthenticated"
        )
        assert "revocation state is unknown" in stale["detail"]


@pytest.mark.parametrize(
    "nonce, kb_audience",
    [
        ("x" * 5000, PLATFORM_AUDIENCE),
        ("n\x00nce", PLATFORM_AUDIENCE),
        (12345678901234567890, PLATFORM_AUDIENCE),
        (None, PLATFORM_AUDIENCE),
        ("nonce", "a" * 5000),
        ("nonce", {"nested": [[["deep"]]]}),
        ("", PLATFORM_AUDIENCE),
    ],
)
def test_hostile_presentation_fields_are_client_errors(
    http, licensed_holder, get_credential, platform, nonce, kb_audience
):
    holder = licensed_holder()
    presentation = present(get_credential(holder), holder, nonce="n", audience=PLATFORM_AUDIENCE)
    response = post_presentation(http, platform[1], presentation, nonce, kb_audience)
    assert response.status_code in (400, 401), response.get_data(as_text=True)
    assert response.get_json()["code"] in ("invalid_request", "invalid_presentation")
