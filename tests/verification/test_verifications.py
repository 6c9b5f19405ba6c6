"""POST /v1/verifications end to end: outcomes, receipts, access records, the nonce."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from core import jws
from core.signing import get_keyring
from tests.fixtures.verification import problem
from verification.models import AccessRecord, Challenge
from verification.schemas import VerificationOut


def _records(app) -> list[AccessRecord]:
    from core.db import get_session

    with app.app_context():
        session = get_session()
        records = list(session.scalars(select(AccessRecord).order_by(AccessRecord.at)))
        session.expunge_all()
        return records


def test_licensed_doctor(app, http, verifier, challenge, verify, audience, licensed_holder):
    client, headers = verifier
    holder = licensed_holder("doctor", name="佐藤 花子")
    issued = challenge(headers, "doctor")
    response = verify(headers, holder.sign(issued["nonce"], audience))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {
        "verification_id",
        "outcome",
        "profession",
        "holder",
        "licence",
        "checked_at",
        "as_of",
        "receipt",
    }
    assert body["outcome"] == "licensed" and body["profession"] == "doctor"
    assert body["holder"]["name"] == "佐藤 花子"
    assert body["licence"] == {"status": "active", "registered_year": 2011, "suspended_until": None}
    assert body["checked_at"].endswith("Z")
    _assert_documented(body)

    # Never a My Number or a registration number, anywhere in the response.
    text = response.get_data(as_text=True)
    assert holder.my_number not in text
    assert holder.licences[0].registration_number not in json.dumps(body["holder"])

    # The subject is this verifier's own pairwise code for the person.
    from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency

    with app.app_context():
        platform = get_identity_platform()
        own = platform.code_for_certificate(verifier_agency(client.id), holder.card.certificate)
        licensing_code = platform.code_for_certificate(LICENSING_AGENCY, holder.card.certificate)
    assert body["holder"]["subject"] == own != licensing_code

    # The receipt: ES256, kid in the JWKS, the contract's claims.
    header = jws.parse_compact(body["receipt"]).header
    assert header["typ"] == "verification-receipt+jwt" and header["alg"] == "ES256"
    jwks = http.get("/.well-known/jwks.json").get_json()
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    with app.app_context():
        claims = get_keyring().verify(body["receipt"], "verification-receipt+jwt")
    assert claims["iss"] == audience
    assert claims["sub"] == own
    assert claims["verification_id"] == body["verification_id"]
    assert claims["verifier"] == client.id
    assert claims["profession"] == "doctor" and claims["outcome"] == "licensed"
    assert isinstance(claims["iat"], int)

    # The holder's access record, with the licensing code only.
    (record,) = _records(app)
    assert record.holder_code == licensing_code
    assert (record.verifier_client_id, record.verifier_name) == (client.id, "St Luke's HR")
    assert (record.profession, record.outcome) == ("doctor", "licensed")
    assert record.verification_id == body["verification_id"]


def test_outcome_is_for_the_asked_profession_only(
    app, verifier, challenge, verify, audience, licensed_holder
):
    _, headers = verifier
    holder = licensed_holder("nurse")
    issued = challenge(headers, "doctor")
    body = verify(headers, holder.sign(issued["nonce"], audience)).get_json()
    assert body["outcome"] == "not_licensed"
    assert body["holder"] is None and body["licence"] is None
    _assert_documented(body)
    (record,) = _records(app)
    assert (record.profession, record.outcome) == ("doctor", "not_licensed")


def test_valid_card_unknown_to_the_platform_is_not_licensed(
    app, verifier, challenge, verify, audience, issue_card, publish_crl
):
    _, headers = verifier
    card = issue_card()  # not registered with the identity platform
    publish_crl()
    issued = challenge(headers)
    body = verify(headers, card.sign(nonce=issued["nonce"], audience=audience)).get_json()
    assert body["outcome"] == "not_licensed"
    assert body["holder"] is None and body["licence"] is None
    with app.app_context():
        claims = get_keyring().verify(body["receipt"], "verification-receipt+jwt")
    assert "sub" not in claims and claims["outcome"] == "not_licensed"
    assert _records(app) == []


@pytest.mark.parametrize(
    ("change", "outcome", "status"),
    [
        ("suspend", "suspended", "suspended"),
        ("revoke", "revoked", "revoked"),
        ("deceased", "deceased", "deceased"),
    ],
)
def test_licence_status_changes_take_effect_on_the_next_verification(
    app, verifier, challenge, verify, audience, licensed_holder, change, outcome, status
):
    from core.db import get_session
    from licensing import service

    _, headers = verifier
    holder = licensed_holder("doctor")
    licence_id = holder.licences[0].id
    with app.app_context():
        if change == "suspend":
            service.suspend_licence(
                get_session(), None, licence_id, reason="inquiry", until=date(2099, 1, 31)
            )
        else:
            service.TRANSITIONS[change](get_session(), None, licence_id, reason="misconduct")
    issued = challenge(headers)
    body = verify(headers, holder.sign(issued["nonce"], audience)).get_json()
    assert body["outcome"] == outcome
    with app.app_context():
        claims = get_keyring().verify(body["receipt"], "verification-receipt+jwt")
    assert claims["outcome"] == outcome
    assert body["licence"]["status"] == status
    expected_until = "2099-01-31" if change == "suspend" else None
    assert body["licence"]["suspended_until"] == expected_until
    _assert_documented(body)


def test_as_of_names_the_last_register_change_and_the_crl_used(
    app, verifier, challenge, verify, audience, licensed_holder, issue_card, publish_crl
):
    from core.db import get_session
    from licensing import service
    from verification.outcome import rfc3339

    _, headers = verifier
    holder = licensed_holder("doctor")
    licence_id = holder.licences[0].id
    with app.app_context():
        changed = service.record_reprimand(
            get_session(), None, licence_id, reason="戒告", on=service.today()
        ).updated_at
    crl = publish_crl()
    body = verify(headers, holder.sign(challenge(headers)["nonce"], audience)).get_json()
    assert body["outcome"] == "licensed"  # a reprimand leaves the licence active
    assert body["as_of"] == {
        "register": rfc3339(changed),
        "revocation": rfc3339(crl.last_update_utc),
    }
    _assert_documented(body)

    stranger = issue_card()  # not licensed: no register time, still the CRL's
    body = verify(headers, stranger.sign(nonce=challenge(headers)["nonce"], audience=audience))
    assert body.get_json()["as_of"] == {
        "register": None,
        "revocation": rfc3339(crl.last_update_utc),
    }


def _assert_documented(body: dict) -> None:
    """The route returns its body as built (no marshmallow dump): it must be exactly what
    the documented schema would produce, and valid against it."""
    schema = VerificationOut()
    assert schema.dump(body) == body
    assert schema.validate(body) == {}


def test_nonce_is_consumed_with_the_access_record(
    app, verifier, challenge, verify, audience, licensed_holder
):
    from core.db import get_session

    _, headers = verifier
    holder = licensed_holder()
    issued = challenge(headers)
    assertion = holder.sign(issued["nonce"], audience)
    assert verify(headers, assertion).status_code == 200
    with app.app_context():
        row = get_session().get(Challenge, issued["challenge_id"])
        assert row.consumed_at is not None
    problem(verify(headers, assertion), 401, "invalid_nonce")  # replay
    assert len(_records(app)) == 2  # the replay, made with a known card, is recorded too
    assert _records(app)[1].outcome == "invalid_nonce"


def test_rejection_looks_the_same_whether_or_not_the_card_is_known(
    app, verifier, challenge, verify, audience, licensed_holder, issue_card, forge
):
    _, headers = verifier
    known = licensed_holder().card
    unknown = issue_card()
    attacker = forge.key()
    bodies = []
    for card in (known, unknown):
        nonce = challenge(headers)["nonce"]
        token = forge.assertion(attacker, [card.certificate, *card.chain], nonce, audience)
        response = verify(headers, token)
        bodies.append((response.status_code, response.get_json()))
    assert bodies[0] == bodies[1]
    assert bodies[0][0] == 401 and bodies[0][1]["code"] == "invalid_assertion"
    # The card did not sign it: nobody's attempt, not even in the known card's log.
    assert _records(app) == []


def test_a_rejection_the_card_signed_is_recorded_for_a_known_card_only(
    app, verifier, challenge, verify, audience, licensed_holder, issue_card, publish_crl
):
    _, headers = verifier
    known = licensed_holder()
    unknown = issue_card()
    publish_crl()
    bodies = []
    for sign in (known.sign, lambda nonce, aud: unknown.sign(nonce=nonce, audience=aud)):
        token = sign(challenge(headers)["nonce"], "urn:another-service")
        response = verify(headers, token)
        bodies.append((response.status_code, response.get_json()))
    assert bodies[0] == bodies[1]
    assert bodies[0][1]["code"] == "invalid_assertion"
    assert [(r.outcome, r.profession) for r in _records(app)] == [("invalid_assertion", "doctor")]


def test_steps_0_to_6_and_8_are_reusable_with_a_holder_nonce_consumer(
    app, audience, licensed_holder
):
    from core.db import get_session, utcnow
    from verification.challenges import ChallengePurpose, create_challenge
    from verification.pipeline import (
        AssertionRejected,
        holder_nonce_consumer,
        verify_card_assertion,
    )

    holder = licensed_holder()
    with app.test_request_context():
        session = get_session()
        issued = create_challenge(session, ChallengePurpose.HOLDER)
        token = holder.sign(issued.nonce, audience)
        verified = verify_card_assertion(
            session, token, holder_nonce_consumer(), audience=audience, now=utcnow()
        )
        assert verified.leaf == holder.card.certificate
        assert verified.card_key.public_numbers() == (
            holder.card.certificate.public_key().public_numbers()
        )
        assert verified.challenge.purpose is ChallengePurpose.HOLDER
        assert verified.claims["nonce"] == issued.nonce
        session.commit()
        from verification.errors import InvalidNonce

        with pytest.raises(AssertionRejected) as raised:
            verify_card_assertion(
                session, token, holder_nonce_consumer(), audience=audience, now=utcnow()
            )
        assert isinstance(raised.value.error, InvalidNonce)
        # The context for the caller, as data: the card that signed and its nonce.
        assert raised.value.assertion.leaf == holder.card.certificate
        assert raised.value.assertion.nonce == issued.nonce


def test_card_key_of_a_non_rsa_leaf_is_untrusted_certificate_not_an_assert(certificate_factory):
    """Step 3 rejects such a leaf first; the property still refuses it under python -O."""
    from core.db import utcnow
    from verification.errors import UntrustedCertificate
    from verification.pipeline import CardAssertion

    assertion = CardAssertion([certificate_factory()], {"nonce": "nonce"}, utcnow())
    with pytest.raises(UntrustedCertificate):
        assertion.card_key
