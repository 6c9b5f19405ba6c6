"""SD-JWT VC issuance and presentation verification (RFC 9901, SD-JWT VC draft)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from core import jws
from holder import sd_jwt
from tests.fixtures.holder import key_binding_jwt, present_sd_jwt, select_disclosures

ISS = "urn:licence-verification:test"
VCT = "urn:licence-verification:vct:professional-licence"
NONCE = "n-0123456789abcdef0123456789"
AUD = "https://telemed.example"
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def issuer_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def card_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_card_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _claims(card_key, **overrides):
    claims = {
        "iss": ISS,
        "iat": NOW - 60,
        "exp": NOW - 60 + 24 * 3600,
        "vct": VCT,
        "profession": "doctor",
        "licence_status": "active",
        "cnf": {"jwk": sd_jwt.rsa_public_jwk(card_key.public_key())},
        "status": {"status_list": {"idx": 7, "uri": "https://svc.example/v1/status-lists/1"}},
    }
    claims.update(overrides)
    return claims


@pytest.fixture(scope="module")
def credential(issuer_key, card_key):
    return sd_jwt.issue(
        _claims(card_key),
        {"name": "山田 花子", "registered_year": 2011},
        private_key=issuer_key,
        kid="k1",
    )


def _verify(presentation, issuer_key, *, nonce=NONCE, aud=AUD, now=NOW, keys=None):
    return sd_jwt.verify_presentation(
        presentation,
        issuer_key_for_kid=(keys or {"k1": issuer_key.public_key()}).get,
        expected_issuer=ISS,
        expected_vct=VCT,
        nonce=nonce,
        audience=aud,
        now=now,
    )


def _present(credential, key, disclose=("name", "registered_year"), **kwargs):
    params = {"nonce": NONCE, "audience": AUD, "issued_at": NOW}
    params.update(kwargs)
    return present_sd_jwt(credential, key, disclose=disclose, **params)


def _expect(reason, presentation, issuer_key, **kwargs):
    with pytest.raises(sd_jwt.SdJwtError) as caught:
        _verify(presentation, issuer_key, **kwargs)
    assert caught.value.reason == reason
    assert str(caught.value) == reason  # fixed text, never input
    return caught.value


# --- Known answers ------------------------------------------------------------------


def test_digest_matches_rfc_9901_examples():
    # Section 4.2.1 (object property) and 4.2.2 (array element).
    assert (
        sd_jwt.digest("WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0")
        == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
    )
    assert (
        sd_jwt.digest("WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0")
        == "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"
    )
    parsed = sd_jwt.parse_disclosure(
        "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    )
    assert (parsed.salt, parsed.name, parsed.value) == (
        "_26bc4LT-ac6q2KI6cBW5es",
        "family_name",
        "Möbius",
    )


# --- Issuance -----------------------------------------------------------------------


def test_issued_credential_structure(credential, card_key):
    assert credential.endswith("~")
    parsed = sd_jwt.parse(credential)
    assert parsed.key_binding_jwt is None and len(parsed.disclosures) == 2
    header = jws.parse_compact(parsed.issuer_jwt).header
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": "k1"}
    payload = jws.parse_compact(parsed.issuer_jwt).payload
    # Undisclosed claims stay hidden: neither the names nor the values are in clear.
    raw_payload = json.dumps(payload, ensure_ascii=False)
    assert "name" not in payload and "registered_year" not in payload
    assert "山田" not in raw_payload and "2011" not in raw_payload
    assert payload["_sd_alg"] == "sha-256"
    assert payload["_sd"] == sorted(payload["_sd"]) and len(payload["_sd"]) == 2
    assert {sd_jwt.digest(d) for d in parsed.disclosures} == set(payload["_sd"])
    assert payload["cnf"] == {"jwk": sd_jwt.rsa_public_jwk(card_key.public_key())}
    assert payload["vct"] == VCT and payload["profession"] == "doctor"
    for encoded in parsed.disclosures:
        disclosure = sd_jwt.parse_disclosure(encoded)
        assert len(jws.b64url_decode(disclosure.salt)) == 16


def test_salts_are_fresh_per_issuance(issuer_key, card_key):
    a = sd_jwt.issue(_claims(card_key), {"name": "A"}, private_key=issuer_key, kid="k1")
    b = sd_jwt.issue(_claims(card_key), {"name": "A"}, private_key=issuer_key, kid="k1")
    assert sd_jwt.parse(a).disclosures != sd_jwt.parse(b).disclosures


def test_decoys_are_added(issuer_key, card_key):
    token = sd_jwt.issue(
        _claims(card_key), {"name": "A"}, private_key=issuer_key, kid="k1", decoys=3
    )
    payload = jws.parse_compact(sd_jwt.parse(token).issuer_jwt).payload
    assert len(payload["_sd"]) == 4


@pytest.mark.parametrize(
    "claims_override, disclosable",
    [
        ({"exp": NOW + 24 * 3600 + 1}, {"name": "A"}),  # longer than 24 hours
        ({}, {"status": "x"}),  # never selectively disclosable
        ({}, {"iss": "x"}),
        ({}, {"profession": "nurse"}),  # overlaps a clear claim
    ],
)
def test_issue_refuses(issuer_key, card_key, claims_override, disclosable):
    claims = _claims(card_key, **claims_override)
    if claims_override.get("exp"):
        claims["iat"] = NOW
    with pytest.raises(ValueError):
        sd_jwt.issue(claims, disclosable, private_key=issuer_key, kid="k1")


# --- Verification: the good path ----------------------------------------------------


def test_full_disclosure_verifies(credential, issuer_key, card_key):
    result = _verify(_present(credential, card_key), issuer_key)
    assert result.disclosed == {"name": "山田 花子", "registered_year": 2011}
    assert result.claims["profession"] == "doctor"
    assert "_sd" not in result.claims and "_sd_alg" not in result.claims
    assert result.status == sd_jwt.StatusReference(7, "https://svc.example/v1/status-lists/1")
    assert result.key_binding_claims["nonce"] == NONCE
    assert result.holder_key.public_numbers() == card_key.public_key().public_numbers()


def test_undisclosed_claims_stay_hidden(credential, issuer_key, card_key):
    presentation = _present(credential, card_key, disclose=["registered_year"])
    result = _verify(presentation, issuer_key)
    assert result.disclosed == {"registered_year": 2011}
    assert "name" not in result.claims
    assert "山田" not in presentation
    nothing = _verify(_present(credential, card_key, disclose=[]), issuer_key)
    assert nothing.disclosed == {} and "registered_year" not in nothing.claims


# --- Verification: rejections -------------------------------------------------------


def test_missing_key_binding_rejected(credential, issuer_key):
    error = _expect("key_binding_missing", credential, issuer_key)
    assert error.issuer_claims["vct"] == VCT  # attributable to the credential


def test_key_binding_signed_by_another_key_rejected(credential, issuer_key, other_card_key):
    _expect("key_binding", _present(credential, other_card_key), issuer_key)


def test_wrong_nonce_rejected(credential, issuer_key, card_key):
    _expect("nonce", _present(credential, card_key, nonce="another-nonce"), issuer_key)


def test_wrong_audience_rejected(credential, issuer_key, card_key):
    _expect("audience", _present(credential, card_key, audience="https://evil.example"), issuer_key)


def test_expired_credential_rejected(credential, issuer_key, card_key):
    later = NOW + 25 * 3600
    _expect("expired", _present(credential, card_key, issued_at=later), issuer_key, now=later)


def test_stale_key_binding_rejected(credential, issuer_key, card_key):
    _expect("stale", _present(credential, card_key, issued_at=NOW - 3600), issuer_key)


def test_future_key_binding_rejected(credential, issuer_key, card_key):
    _expect("key_binding", _present(credential, card_key, issued_at=NOW + 3600), issuer_key)


def test_disclosure_not_in_sd_rejected(credential, issuer_key, card_key):
    forged = sd_jwt.make_disclosure("name", "Someone Else").encoded
    chosen = select_disclosures(credential, ["registered_year"]) + forged + "~"
    kb = key_binding_jwt(chosen, card_key, nonce=NONCE, audience=AUD, issued_at=NOW)
    _expect("disclosure", chosen + kb, issuer_key)


def test_duplicate_disclosure_rejected(credential, issuer_key, card_key):
    disclosure = sd_jwt.parse(credential).disclosures[0]
    chosen = sd_jwt.parse(credential).issuer_jwt + "~" + disclosure + "~" + disclosure + "~"
    kb = key_binding_jwt(chosen, card_key, nonce=NONCE, audience=AUD, issued_at=NOW)
    _expect("disclosure", chosen + kb, issuer_key)


def test_disclosure_added_after_key_binding_rejected(credential, issuer_key, card_key):
    presentation = _present(credential, card_key, disclose=["registered_year"])
    parsed = sd_jwt.parse(presentation)
    name = next(
        d for d in sd_jwt.parse(credential).disclosures if sd_jwt.parse_disclosure(d).name == "name"
    )
    tampered = parsed.sd_jwt + name + "~" + parsed.key_binding_jwt
    _expect("key_binding", tampered, issuer_key)


def test_disclosure_removed_after_key_binding_rejected(credential, issuer_key, card_key):
    parsed = sd_jwt.parse(_present(credential, card_key))
    tampered = parsed.issuer_jwt + "~" + parsed.disclosures[0] + "~" + parsed.key_binding_jwt
    _expect("key_binding", tampered, issuer_key)


def test_issuer_signature_from_unknown_key_rejected(card_key, issuer_key):
    rogue = ec.generate_private_key(ec.SECP256R1())
    token = sd_jwt.issue(_claims(card_key), {"name": "A"}, private_key=rogue, kid="k1")
    error = _expect("issuer_signature", _present(token, card_key), issuer_key)
    assert error.issuer_claims is None  # unverified claims are never handed out


def test_unknown_kid_rejected(credential, issuer_key, card_key):
    _expect(
        "issuer_signature",
        _present(credential, card_key),
        issuer_key,
        keys={"k2": issuer_key.public_key()},
    )


def _resign_issuer_jwt(credential, issuer_key, header=None, **claim_changes):
    parsed = sd_jwt.parse(credential)
    payload = dict(jws.parse_compact(parsed.issuer_jwt).payload)
    for name, value in claim_changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    token = jws.sign(payload, issuer_key, "ES256", header or {"typ": "dc+sd-jwt", "kid": "k1"})
    return token + "~" + "".join(d + "~" for d in parsed.disclosures)


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT", "kid": "k1"},
        {"typ": "vc+sd-jwt", "kid": "k1"},
        {"typ": "dc+sd-jwt"},
        {"typ": "dc+sd-jwt", "kid": "k1", "crit": ["exp"]},
        {"typ": "dc+sd-jwt", "kid": "k1", "jku": "https://evil.example/jwks"},
    ],
)
def test_issuer_header_rejected(credential, issuer_key, card_key, header):
    token = _resign_issuer_jwt(credential, issuer_key, header=header)
    _expect("issuer_signature", _present(token, card_key), issuer_key)


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "urn:someone-else"},
        {"vct": "urn:other"},
        {"_sd_alg": "sha-512"},
        {"_sd_alg": None},
        {"cnf": None},
        {"cnf": {"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}},
        {"status": None},
        {"status": {"status_list": {"idx": -1, "uri": "https://x"}}},
        {"status": {"status_list": {"idx": "7", "uri": "https://x"}}},
        {"iat": NOW + 3600, "exp": NOW + 7200},
        {"exp": NOW + 30 * 24 * 3600},  # lifetime beyond 24 hours
        {"nbf": NOW + 3600},
    ],
)
def test_bad_issuer_claims_rejected(credential, issuer_key, card_key, changes):
    token = _resign_issuer_jwt(credential, issuer_key, **changes)
    _expect("claims", _present(token, card_key), issuer_key)


def test_small_card_key_in_cnf_rejected(credential, issuer_key):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    token = _resign_issuer_jwt(
        credential, issuer_key, cnf={"jwk": sd_jwt.rsa_public_jwk(small.public_key())}
    )
    _expect("claims", _present(token, small), issuer_key)


def test_private_key_members_in_cnf_rejected(credential, issuer_key, card_key):
    jwk = dict(sd_jwt.rsa_public_jwk(card_key.public_key()), d="AQAB")
    token = _resign_issuer_jwt(credential, issuer_key, cnf={"jwk": jwk})
    _expect("claims", _present(token, card_key), issuer_key)


def test_repeated_digest_in_sd_rejected(credential, issuer_key, card_key):
    payload = jws.parse_compact(sd_jwt.parse(credential).issuer_jwt).payload
    token = _resign_issuer_jwt(credential, issuer_key, _sd=payload["_sd"] + payload["_sd"][:1])
    _expect("disclosure", _present(token, card_key), issuer_key)


def test_disclosure_overwriting_clear_claim_rejected(issuer_key, card_key):
    disclosure = sd_jwt.make_disclosure("name", "x")
    claims = _claims(card_key)
    token = sd_jwt.issue(claims, {}, private_key=issuer_key, kid="k1")
    # Re-sign a payload that has both "profession" in clear and a disclosure for it.
    smuggled = sd_jwt.Disclosure(
        jws.b64url_encode(json.dumps(["c2FsdHNhbHRzYWx0", "profession", "nurse"]).encode()),
        "c2FsdHNhbHRzYWx0",
        "profession",
        "nurse",
    )
    token = _resign_issuer_jwt(token, issuer_key, _sd=sorted([disclosure.digest, smuggled.digest]))
    chosen = sd_jwt.parse(token).issuer_jwt + "~" + smuggled.encoded + "~"
    kb = key_binding_jwt(chosen, card_key, nonce=NONCE, audience=AUD, issued_at=NOW)
    _expect("disclosure", chosen + kb, issuer_key)


@pytest.mark.parametrize(
    "header",
    [{"typ": "JWT"}, {"typ": "kb+jwt", "jwk": {"kty": "RSA"}}, {}],
)
def test_key_binding_header_rejected(credential, issuer_key, card_key, header):
    chosen = select_disclosures(credential, ["name"])
    claims = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": sd_jwt.sd_hash(chosen)}
    kb = jws.sign(claims, card_key, "RS256", header)
    if not header:
        # python-jose defaults typ to "JWT"; strip it to test a missing typ.
        parts = kb.split(".")
        parts[0] = jws.b64url_encode(json.dumps({"alg": "RS256"}).encode())
        kb = ".".join(parts)
    _expect("key_binding", chosen + kb, issuer_key)


def test_key_binding_with_hmac_alg_rejected(credential, issuer_key):
    chosen = select_disclosures(credential, ["name"])
    header = jws.b64url_encode(b'{"alg":"HS256","typ":"kb+jwt"}')
    claims = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": sd_jwt.sd_hash(chosen)}
    payload = jws.b64url_encode(json.dumps(claims).encode())
    _expect("key_binding", chosen + f"{header}.{payload}.AAAA", issuer_key)


@pytest.mark.parametrize("missing", ["sd_hash", "nonce", "aud", "iat"])
def test_key_binding_claims_required(credential, issuer_key, card_key, missing):
    chosen = select_disclosures(credential, ["name"])
    claims = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": sd_jwt.sd_hash(chosen)}
    del claims[missing]
    kb = jws.sign(claims, card_key, "RS256", {"typ": "kb+jwt"})
    with pytest.raises(sd_jwt.SdJwtError):
        _verify(chosen + kb, issuer_key)


def test_key_binding_audience_list_not_accepted(credential, issuer_key, card_key):
    chosen = select_disclosures(credential, ["name"])
    claims = {"iat": NOW, "aud": [AUD], "nonce": NONCE, "sd_hash": sd_jwt.sd_hash(chosen)}
    kb = jws.sign(claims, card_key, "RS256", {"typ": "kb+jwt"})
    _expect("audience", chosen + kb, issuer_key)


# --- Parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "~",
        "~~",
        "a.b.c~~kb",  # empty disclosure
        "a.b.c~" + "d~" * (sd_jwt.MAX_DISCLOSURES + 1),
        "x" * (sd_jwt.MAX_PRESENTATION_CHARS + 1),
        "a.b.c~ü~",
        None,
        42,
    ],
)
def test_parse_rejects(text):
    with pytest.raises(sd_jwt.SdJwtError) as caught:
        sd_jwt.parse(text)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'["salt"]',
        b'["salt", "a", 1, 2]',
        b'{"salt": "a"}',
        b'[1, "name", "v"]',
        b'["", "name", "v"]',
        b'["salt", 5, "v"]',
        b'["salt", "n", {"a": 1, "a": 2}]',  # duplicate member
        b'["salt", "n", NaN]',
        b"\xff\xfe",
    ],
)
def test_parse_disclosure_rejects(payload):
    with pytest.raises(sd_jwt.SdJwtError):
        sd_jwt.parse_disclosure(jws.b64url_encode(payload))


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_disclosure_with_reserved_name_rejected(name):
    encoded = jws.b64url_encode(json.dumps(["c2FsdA", name, "x"]).encode())
    with pytest.raises(sd_jwt.SdJwtError) as caught:
        sd_jwt.parse_disclosure(encoded)
    assert caught.value.reason == "disclosure"


def test_padded_disclosure_rejected():
    encoded = sd_jwt.make_disclosure("name", "A").encoded
    with pytest.raises(sd_jwt.SdJwtError):
        sd_jwt.parse_disclosure(encoded + "=" * (-len(encoded) % 4 or 4))


json_values = st.recursive(
    # Integers within 64 bits: strict JSON refuses larger ones (core.strict_json).
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@given(
    name=st.text(min_size=1, max_size=30).filter(lambda n: n not in sd_jwt.NEVER_DISCLOSED),
    value=json_values,
)
def test_disclosure_round_trip(name, value):
    disclosure = sd_jwt.make_disclosure(name, value)
    parsed = sd_jwt.parse_disclosure(disclosure.encoded)
    assert (parsed.name, parsed.value, parsed.salt) == (name, value, disclosure.salt)
    assert parsed.digest == disclosure.digest


@given(st.integers(2**63).flatmap(lambda n: st.sampled_from([n, -n - 1])))
def test_a_disclosure_with_an_integer_beyond_64_bits_is_malformed(number):
    encoded = jws.b64url_encode(json.dumps(["salt", "name", number]).encode())
    with pytest.raises(sd_jwt.SdJwtError, match="malformed"):
        sd_jwt.parse_disclosure(encoded)


@given(st.text(max_size=300))
def test_parse_never_crashes(text):
    try:
        presentation = sd_jwt.parse(text)
    except sd_jwt.SdJwtError as error:
        assert error.reason == "malformed"
    else:
        rebuilt = presentation.sd_jwt + (presentation.key_binding_jwt or "")
        assert rebuilt == text


@given(st.binary(max_size=200))
def test_parse_disclosure_never_crashes(data):
    try:
        sd_jwt.parse_disclosure(jws.b64url_encode(data))
    except sd_jwt.SdJwtError:
        pass


@settings(max_examples=60, deadline=None)
@given(
    extra=st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~.",
            max_size=60,
        ),
        max_size=3,
    )
)
def test_mangled_presentations_rejected_cleanly(credential, issuer_key, card_key, extra):
    presentation = _present(credential, card_key)
    parsed = sd_jwt.parse(presentation)
    mangled = parsed.sd_jwt + "".join(e + "~" for e in extra if e) + parsed.key_binding_jwt
    if mangled == presentation:
        return
    with pytest.raises(sd_jwt.SdJwtError):
        _verify(mangled, issuer_key)


def test_nested_and_array_disclosures_processed():
    # Generic processing (section 7.1): nested _sd and array elements {"...": digest}.
    street = sd_jwt.make_disclosure("street", "1-1 Chiyoda")
    element = sd_jwt.Disclosure(
        jws.b64url_encode(json.dumps(["c2FsdHNhbHQ", "FR"]).encode()), "c2FsdHNhbHQ", None, "FR"
    )
    hidden = sd_jwt.Disclosure(
        jws.b64url_encode(json.dumps(["c2FsdHNhbHQy", "DE"]).encode()), "c2FsdHNhbHQy", None, "DE"
    )
    payload = {
        "address": {"_sd": [street.digest], "country": "JP"},
        "nationalities": [{"...": element.digest}, {"...": hidden.digest}, "JP"],
        "_sd": [],
        "_sd_alg": "sha-256",
    }
    claims, disclosed = sd_jwt.process_disclosures(payload, [street.encoded, element.encoded])
    assert claims == {
        "address": {"country": "JP", "street": "1-1 Chiyoda"},
        "nationalities": ["FR", "JP"],
    }
    assert disclosed == {}
