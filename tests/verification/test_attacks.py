"""Impersonation and forgery: every attack of issue 5, with real generated keys.

Each attack is submitted through POST /v1/verifications and through the card app's
POST /v1/challenges/{id}/response exactly as a hostile client would; the assertion is
rejected with the contract's code, nothing about the holder is returned, and the
legitimate nonce stays usable unless the rejection is the nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select

from seed.card_authority import ISSUING_NAME, ROOT_NAME
from tests.fixtures.verification import (
    Forge,
    b64url,
    card_key_usage,
    problem,
    x5c_entry,
)
from verification.models import AccessRecord


@pytest.fixture(params=["verifier", "card_app"])
def verify(request, verify, answer_challenge):
    """Every attack through both routes: the verifier's POST /v1/verifications and the
    card app's POST /v1/challenges/{id}/response (same pipeline)."""
    return verify if request.param == "verifier" else answer_challenge


@pytest.fixture
def victim(licensed_holder):
    return licensed_holder("doctor")


@pytest.fixture
def hospital(verifier, challenge):
    """(headers, a fresh doctor challenge) of the verifying hospital."""
    _, headers = verifier
    return headers, challenge(headers, "doctor")


def _records(app) -> list[tuple[str, str | None]]:
    from core.db import get_session

    with app.app_context():
        rows = get_session().execute(
            select(AccessRecord.outcome, AccessRecord.profession).order_by(AccessRecord.at)
        )
        return [tuple(row) for row in rows]


def _assert_nothing_about_the_holder(response, victim) -> None:
    text = response.get_data(as_text=True)
    body = response.get_json(force=True)
    assert "holder" not in body and "licence" not in body
    assert victim.my_number not in text
    assert victim.licences[0].name not in text


def _still_usable(verify, headers, victim, nonce, audience) -> None:
    response = verify(headers, victim.sign(nonce, audience))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["outcome"] == "licensed"


def _issuing_key(card_authority):
    path = Path(card_authority.directory) / "issuing-ca.key.pem"
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


# --- impersonation: a real certificate, someone else's key --------------------------------


def test_real_certificate_with_the_attackers_key(app, verify, audience, hospital, victim, forge):
    headers, issued = hospital
    attacker_key = forge.key()
    chain = [victim.card.certificate, *victim.card.chain]
    response = verify(headers, forge.assertion(attacker_key, chain, issued["nonce"], audience))
    problem(response, 401, "invalid_assertion")
    _assert_nothing_about_the_holder(response, victim)
    # Issue 14.4: the card did not sign it, so it is no attempt "made with your card":
    # anyone who has seen the certificate could otherwise forge entries in the log.
    assert _records(app) == []
    # The hospital's nonce was not burned by the failed attempt.
    _still_usable(verify, headers, victim, issued["nonce"], audience)


# --- forgery: certificates the card authority never issued ------------------------------


def test_self_signed_certificate_copying_a_real_subject(
    app, verify, audience, hospital, victim, forge
):
    headers, issued = hospital
    real = victim.card.certificate
    key = forge.key()
    # Same subject, same serial: the identity platform keys registrations on issuer name
    # and serial, so this must never get that far.
    for issuer in (real.subject, real.issuer):
        forged = Forge.certificate(
            subject=real.subject,
            subject_key=key,
            issuer=issuer,
            issuer_key=key,
            ca=False,
            serial=real.serial_number,
        )
        for chain in ([forged], [forged, *victim.card.chain]):
            response = verify(headers, forge.assertion(key, chain, issued["nonce"], audience))
            problem(response, 401, "untrusted_certificate")
    assert _records(app) == []
    _still_usable(verify, headers, victim, issued["nonce"], audience)


def test_card_from_an_attacker_authority_with_the_real_names(
    app, verify, audience, hospital, victim, issue_card, foreign_card_authority
):
    headers, issued = hospital
    fake = issue_card(authority=foreign_card_authority)
    assert fake.certificate.issuer == victim.card.certificate.issuer  # same names
    response = verify(headers, fake.sign(nonce=issued["nonce"], audience=audience))
    problem(response, 401, "untrusted_certificate")
    assert _records(app) == []


def test_fake_intermediate_with_the_real_issuers_name(
    app, verify, audience, hospital, victim, forge
):
    headers, issued = hospital
    real = victim.card.certificate
    fake_root, fake_root_key = forge.self_signed_ca(ROOT_NAME)
    fake_issuing_key = forge.key()
    for issuer, issuer_key in ((ROOT_NAME, fake_root_key), (ISSUING_NAME, fake_issuing_key)):
        fake_issuing = Forge.certificate(
            subject=ISSUING_NAME,
            subject_key=fake_issuing_key,
            issuer=issuer,
            issuer_key=issuer_key,
            ca=True,
            path_length=0,
        )
        leaf_key = forge.key()
        leaf = Forge.certificate(
            subject=real.subject,
            subject_key=leaf_key,
            issuer=ISSUING_NAME,
            issuer_key=fake_issuing_key,
            ca=False,
            serial=real.serial_number,
        )
        for chain in ([leaf, fake_issuing], [leaf, fake_issuing, fake_root], [leaf]):
            token = forge.assertion(leaf_key, chain, issued["nonce"], audience)
            problem(verify(headers, token), 401, "untrusted_certificate")
    assert _records(app) == []


def test_unrelated_or_misordered_certificates_in_x5c(
    app, verify, audience, hospital, victim, card_authority, forge
):
    headers, issued = hospital
    card = victim.card
    stranger, _ = forge.self_signed_ca(Forge.name("Somebody else"))
    root = card_authority.root_certificate
    for chain in (
        [card.certificate, *card.chain, stranger],
        [card.certificate, stranger, *card.chain],
        [card.certificate, root, *card.chain],
        [card.certificate, card.certificate],
    ):
        token = forge.assertion(card.private_key, chain, issued["nonce"], audience)
        problem(verify(headers, token), 401, "untrusted_certificate")
    # Leaf only, and leaf + issuing CA + root in order, are both the leaf's chain.
    for chain in ([card.certificate], [card.certificate, *card.chain, root]):
        nonce = _new_nonce(app, headers)
        token = forge.assertion(card.private_key, chain, nonce, audience)
        assert verify(headers, token).status_code == 200


def _new_nonce(app, headers) -> str:
    response = app.test_client().post(
        "/v1/challenges", json={"profession": "doctor"}, headers=headers
    )
    return response.get_json()["nonce"]


def test_expired_and_not_yet_valid_card_certificates(
    app, verify, audience, hospital, issue_card, publish_crl, register_licence
):
    from tests.fixtures.licensing import random_my_number

    headers, issued = hospital
    now = datetime.now(UTC)
    for issued_at in (now - timedelta(days=6 * 366), now + timedelta(days=2)):
        my_number = random_my_number()
        register_licence(my_number=my_number)
        card = issue_card(my_number, now=issued_at)
        publish_crl()
        response = verify(headers, card.sign(nonce=issued["nonce"], audience=audience))
        problem(response, 401, "untrusted_certificate")
    assert _records(app) == []


def test_card_certificate_used_as_a_ca(app, verify, audience, hospital, victim, issue_card, forge):
    headers, issued = hospital
    attacker_card = issue_card()  # a genuine card, of the attacker
    leaf_key = forge.key()
    leaf = Forge.certificate(
        subject=victim.card.certificate.subject,
        subject_key=leaf_key,
        issuer=attacker_card.certificate.subject,
        issuer_key=attacker_card.private_key,
        ca=False,
    )
    chain = [leaf, attacker_card.certificate, *attacker_card.chain]
    problem(
        verify(headers, forge.assertion(leaf_key, chain, issued["nonce"], audience)),
        401,
        "untrusted_certificate",
    )
    assert _records(app) == []


def _mis_issued(card_authority, forge, **kwargs):
    key = kwargs.pop("key", None) or forge.key()
    cert = Forge.certificate(
        subject=Forge.name("MISISSUED"),
        subject_key=key,
        issuer=card_authority.issuing_certificate.subject,
        issuer_key=_issuing_key(card_authority),
        **{"ca": False, **kwargs},
    )
    return cert, key


@pytest.mark.parametrize(
    "profile",
    [
        "no_policy",
        "other_policy",
        "key_cert_sign",
        "no_digital_signature",
        "ca_true",
        "rsa_1024",
        "ec_key",
        "server_auth_only",
        "unknown_critical_extension",
    ],
)
def test_certificates_outside_the_card_profile_are_untrusted(
    app, verify, audience, hospital, card_authority, forge, publish_crl, profile
):
    headers, issued = hospital
    publish_crl()
    options: dict = {}
    if profile == "no_policy":
        options["policies"] = None
    elif profile == "other_policy":
        options["policies"] = [x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")]
    elif profile == "key_cert_sign":
        options["key_usage"] = card_key_usage(key_cert_sign=True)
    elif profile == "no_digital_signature":
        options["key_usage"] = card_key_usage(digital_signature=False, content_commitment=True)
    elif profile == "ca_true":
        options.update(ca=True, path_length=0)
    elif profile == "rsa_1024":
        options["key"] = forge.key(bits=1024)
    elif profile == "ec_key":
        options["key"] = ec.generate_private_key(ec.SECP256R1())
    elif profile == "server_auth_only":
        options["extra"] = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)]
    elif profile == "unknown_critical_extension":
        unknown = x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"
        )
        options["extra"] = [(unknown, True)]
    cert, key = _mis_issued(card_authority, forge, **options)
    if profile == "ec_key":
        # An EC card cannot even produce an RS256 signature; sign with any RSA key.
        key = forge.key()
    chain = [cert, card_authority.issuing_certificate]
    response = verify(headers, forge.assertion(key, chain, issued["nonce"], audience))
    problem(response, 401, "untrusted_certificate")


def test_a_certificate_inside_the_profile_passes_the_chain_step(
    app, verify, audience, hospital, card_authority, forge, publish_crl
):
    # Control for the test above: the same construction, without the defect, validates
    # (and, unknown to the identity platform, is simply not licensed).
    headers, issued = hospital
    publish_crl()
    cert, key = _mis_issued(card_authority, forge)
    token = forge.assertion(
        key, [cert, card_authority.issuing_certificate], issued["nonce"], audience
    )
    response = verify(headers, token)
    assert response.status_code == 200 and response.get_json()["outcome"] == "not_licensed"


# --- algorithm attacks ----------------------------------------------------------------------


def _spki_der(victim) -> bytes:
    return victim.card.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_alg_none(app, verify, audience, hospital, victim, forge):
    headers, issued = hospital
    header = {
        "alg": "none",
        "typ": "card-assertion+jwt",
        "x5c": [x5c_entry(victim.card.certificate)],
    }
    claims = Forge.claims(issued["nonce"], audience)
    for signature in (b"", b"\x00" * 256):
        response = verify(headers, Forge.raw_token(header, claims, signature))
        problem(response, 401, "invalid_assertion")
    _still_usable(verify, headers, victim, issued["nonce"], audience)


@pytest.mark.parametrize("key_form", ["der", "pem", "modulus"])
def test_hmac_with_the_public_key_as_secret(app, verify, audience, hospital, victim, key_form):
    headers, issued = hospital
    public = victim.card.certificate.public_key()
    secret = {
        "der": _spki_der(victim),
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "modulus": public.public_numbers().n.to_bytes(256, "big"),
    }[key_form]
    header = {
        "alg": "HS256",
        "typ": "card-assertion+jwt",
        "x5c": [x5c_entry(c) for c in [victim.card.certificate, *victim.card.chain]],
    }
    claims = Forge.claims(issued["nonce"], audience)
    encoded = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(secret, encoded.encode(), hashlib.sha256).digest()
    response = verify(headers, f"{encoded}.{b64url(mac)}")
    problem(response, 401, "invalid_assertion")
    assert _records(app) == []  # refused at step 2, before the certificate is even read


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "rs256", "HS512", None, ["RS256"]])
def test_algorithm_mismatch_or_not_allowed(app, verify, audience, hospital, victim, forge, alg):
    headers, issued = hospital
    card = victim.card
    header = {
        "typ": "card-assertion+jwt",
        "x5c": [x5c_entry(c) for c in [card.certificate, *card.chain]],
    }
    if alg is not None:
        header["alg"] = alg
    # A genuine RS256 signature by the card over this header: only the alg is wrong.
    token = Forge.token(header, Forge.claims(issued["nonce"], audience), card.private_key)
    problem(verify(headers, token), 401, "invalid_assertion")
    _still_usable(verify, headers, victim, issued["nonce"], audience)


# --- tampering ------------------------------------------------------------------------------


def test_tampered_payload_header_or_signature(app, verify, audience, hospital, victim, challenge):
    headers, issued = hospital
    genuine = victim.sign(issued["nonce"], audience)
    header, payload, signature = genuine.split(".")
    other = challenge(headers)["nonce"]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["nonce"] = other
    swapped_payload = b64url(json.dumps(claims).encode())
    parsed_header = json.loads(base64.urlsafe_b64decode(header + "=="))
    parsed_header["kid"] = "x"
    swapped_header = b64url(json.dumps(parsed_header).encode())
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[len(raw) // 2] ^= 0x01
    for token in (
        f"{header}.{swapped_payload}.{signature}",
        f"{swapped_header}.{payload}.{signature}",
        f"{header}.{payload}.{b64url(bytes(raw))}",
        f"{header}.{payload}.{b64url(bytes(raw[:-1]))}",
    ):
        problem(verify(headers, token), 401, "invalid_assertion")
    # Neither nonce was burned.
    _still_usable(verify, headers, victim, issued["nonce"], audience)
    _still_usable(verify, headers, victim, other, audience)


# --- claims ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "accepted"),
    [
        ("wrong_audience", False),
        ("audience_list", False),
        ("expired", False),
        ("expired_within_leeway", True),
        ("future_dated", False),
        ("future_within_leeway", True),
        ("lifetime_301", False),
        ("lifetime_300", True),
        ("exp_equals_iat", False),
        ("no_nonce", False),
        ("float_iat", False),
        ("string_exp", False),
        ("bool_iat", False),
        ("missing_exp", False),
    ],
)
def test_claims(app, verify, audience, hospital, victim, forge, case, accepted):
    headers, issued = hospital
    now = int(datetime.now(UTC).timestamp())
    claims = {"aud": audience, "nonce": issued["nonce"], "iat": now, "exp": now + 300}
    changes = {
        "wrong_audience": {"aud": "urn:licence-verification:elsewhere"},
        "audience_list": {"aud": [audience]},
        "expired": {"iat": now - 400, "exp": now - 100},
        "expired_within_leeway": {"iat": now - 300, "exp": now - 30},
        "future_dated": {"iat": now + 120, "exp": now + 300},
        "future_within_leeway": {"iat": now + 30, "exp": now + 300},
        "lifetime_301": {"iat": now - 1, "exp": now + 300},
        "lifetime_300": {"iat": now - 1, "exp": now + 299},
        "exp_equals_iat": {"exp": now},
        "no_nonce": {"nonce": None},
        "float_iat": {"iat": now + 0.5},
        "string_exp": {"exp": str(now + 300)},
        "bool_iat": {"iat": True},
        "missing_exp": {"exp": None},
    }[case]
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    card = victim.card
    header = {
        "alg": "RS256",
        "typ": "card-assertion+jwt",
        "x5c": [x5c_entry(c) for c in [card.certificate, *card.chain]],
    }
    response = verify(headers, Forge.token(header, claims, card.private_key))
    if accepted:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        problem(response, 401, "invalid_assertion")
        _still_usable(verify, headers, victim, issued["nonce"], audience)


# --- nonces ---------------------------------------------------------------------------------


def test_replayed_assertion(verify, audience, hospital, victim):
    headers, issued = hospital
    assertion = victim.sign(issued["nonce"], audience)
    assert verify(headers, assertion).status_code == 200
    for _ in range(2):
        problem(verify(headers, assertion), 401, "invalid_nonce")


def test_nonce_from_another_hospital(
    app, verify, audience, victim, verifier, other_verifier, challenge
):
    _, ours = verifier
    _, theirs = other_verifier
    their_nonce = challenge(theirs)["nonce"]
    assertion = victim.sign(their_nonce, audience)
    response = problem(verify(ours, assertion), 401, "invalid_nonce")
    assert response["detail"]
    # It was not burned: the hospital it was issued to can still use it.
    assert verify(theirs, assertion).status_code == 200


def test_unknown_and_expired_nonces(app, verify, audience, hospital, victim, challenge):
    headers, issued = hospital
    problem(verify(headers, victim.sign("x" * 43, audience)), 401, "invalid_nonce")
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5, seconds=1), tick=True):
        problem(verify(headers, victim.sign(issued["nonce"], audience)), 401, "invalid_nonce")


def test_holder_nonce_is_not_a_verifier_nonce(app, verify, audience, hospital, victim):
    from core.db import get_session
    from verification.challenges import ChallengePurpose, create_challenge

    headers, _ = hospital
    with app.app_context():
        holder_challenge = create_challenge(get_session(), ChallengePurpose.HOLDER)
    problem(verify(headers, victim.sign(holder_challenge.nonce, audience)), 401, "invalid_nonce")


# --- card status: lost, resumed, revoked -------------------------------------------------------


def test_suspended_resumed_and_revoked_card(
    app, verify, audience, verifier, challenge, victim, card_authority, publish_crl
):
    _, headers = verifier
    serial = victim.card.serial

    card_authority.report_lost(serial)
    publish_crl()
    response = verify(headers, victim.sign(challenge(headers)["nonce"], audience))
    problem(response, 403, "card_suspended")
    _assert_nothing_about_the_holder(response, victim)

    card_authority.resume(serial)
    publish_crl()
    response = verify(headers, victim.sign(challenge(headers)["nonce"], audience))
    assert response.status_code == 200 and response.get_json()["outcome"] == "licensed"

    card_authority.revoke(serial)
    publish_crl()
    problem(
        verify(headers, victim.sign(challenge(headers)["nonce"], audience)), 403, "card_revoked"
    )

    assert _records(app) == [
        ("card_suspended", "doctor"),
        ("licensed", "doctor"),
        ("card_revoked", "doctor"),
    ]


@pytest.mark.parametrize("state", ["lost", "revoked"])
def test_an_unsigned_token_learns_nothing_of_the_cards_status(
    app, verify, audience, verifier, challenge, victim, card_authority, publish_crl, forge, state
):
    """Issue 14.5 (revocation oracle): with only someone's certificate, an attacker must
    not learn whether their card is lost or revoked. Signature and claims come first."""
    _, headers = verifier
    getattr(card_authority, "report_lost" if state == "lost" else "revoke")(victim.card.serial)
    publish_crl()
    chain = [victim.card.certificate, *victim.card.chain]
    unsigned = forge.assertion(forge.key(), chain, challenge(headers)["nonce"], audience)
    problem(verify(headers, unsigned), 401, "invalid_assertion")
    # Signed by the card but with bad claims: still no word about the card's status.
    wrong_aud = victim.sign(challenge(headers)["nonce"], "urn:another-service")
    problem(verify(headers, wrong_aud), 401, "invalid_assertion")
    # Only the card's own, well-formed assertion learns it (and is the holder's attempt).
    code = "card_suspended" if state == "lost" else "card_revoked"
    problem(verify(headers, victim.sign(challenge(headers)["nonce"], audience)), 403, code)
    assert _records(app) == [("invalid_assertion", "doctor"), (code, "doctor")]


def test_no_crl_or_a_stale_crl_fails_closed(
    app, verify, audience, verifier, challenge, licensed_holder, publish_crl
):
    _, headers = verifier
    holder = licensed_holder(publish=False)
    issued = challenge(headers)
    problem(verify(headers, holder.sign(issued["nonce"], audience)), 503, "revocation_unavailable")
    publish_crl(validity=timedelta(hours=1))
    _still_usable(verify, headers, holder, issued["nonce"], audience)
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1, seconds=5), tick=True):
        response = verify(headers, holder.sign(challenge(headers)["nonce"], audience))
        problem(response, 503, "revocation_unavailable")
        assert response.headers["Retry-After"]
