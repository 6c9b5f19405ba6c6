"""Backstop tests: the python-jose behaviour ``core.jws`` relies on, and how it guards it.

If an upgrade of python-jose changes any of these pins, the test fails and someone has to
re-read ``core/jws.py`` before the version moves. The pinned facts (3.5.0):

- ``crit`` is ignored: a token whose header demands an unknown critical extension still
  verifies. Our pipeline's strict parse rejects every header member but alg/typ/x5c/kid.
- A DER-encoded public key is accepted as an HMAC secret when HS256 is allowed (PEM and
  PKCS#1 PEM are refused since the CVE-2024-33663 fix). Our wrapper allows only RS256
  and ES256, requires exactly one algorithm, and takes key objects, never bytes.
- Padded base64url segments and duplicate JSON members are accepted (last one wins);
  ``parse_compact`` rejects both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from importlib.metadata import version

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk
from jose import jws as jose_jws
from jose.exceptions import JOSEError

from core import jws


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_token(secret: bytes, payload: bytes = b'{"a":1}') -> str:
    signing_input = f"{_b64(json.dumps({'alg': 'HS256'}).encode())}.{_b64(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def test_pinned_python_jose_version():
    assert version("python-jose") == "3.5.0"


# --- crit -------------------------------------------------------------------------------


def test_python_jose_ignores_crit(rsa_key):
    token = jose_jws.sign(
        b'{"a":1}', rsa_key, headers={"crit": ["x-must-understand"]}, algorithm="RS256"
    )
    assert jose_jws.verify(token, rsa_key.public_key(), algorithms=["RS256"]) == b'{"a":1}'
    # Our wrapper's signature check is just as blind to it ...
    jws.verify_parsed(jws.parse_compact(token), rsa_key.public_key(), "RS256")
    # ... so the header is policed before: parse_compact exposes crit, the pipeline refuses.
    assert "crit" in jws.parse_compact(token).header


def test_pipeline_refuses_crit_and_other_header_members(rsa_key):
    from verification.errors import InvalidAssertion
    from verification.pipeline import step1_parse

    for member in ("crit", "jku", "jwk", "x5u", "zip", "cty", "b64"):
        token = jws.sign(
            {"a": 1},
            rsa_key,
            "RS256",
            headers={"typ": "card-assertion+jwt", "x5c": ["AA=="], member: ["x"]},
        )
        with pytest.raises(InvalidAssertion):
            step1_parse(token)


# --- HMAC with a public key -------------------------------------------------------------


def test_python_jose_accepts_der_public_key_as_hmac_secret(rsa_key):
    der = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = _hs256_token(der)
    # The classic algorithm-confusion attack works against the bare library ...
    assert jose_jws.verify(token, der, algorithms=["HS256", "RS256"]) == b'{"a":1}'


@pytest.mark.parametrize(
    "public_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
def test_python_jose_refuses_pem_public_key_as_hmac_secret(rsa_key, public_format):
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, public_format)
    with pytest.raises(JOSEError):
        jose_jws.verify(_hs256_token(pem), pem, algorithms=["HS256"])


def test_wrapper_refuses_hmac_in_every_form(rsa_key):
    public = rsa_key.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = _hs256_token(der)
    parsed = jws.parse_compact(token)
    # HS256 is not an algorithm the wrapper knows.
    for key in (public, der):
        with pytest.raises(ValueError):
            jws.verify_parsed(parsed, key, "HS256")  # type: ignore[arg-type]
    # An HS256 token checked as RS256 fails, whatever the key form.
    for key in (public, der):
        with pytest.raises(jws.JwsError):
            jws.verify_parsed(parsed, key, "RS256")
    # Even with the header's alg forged to RS256, a DER key is no HMAC secret here.
    forged = jws.CompactJws(
        {"alg": "RS256"}, parsed.payload, parsed.signing_input, parsed.signature
    )
    for key in (public, der):
        with pytest.raises(jws.JwsError):
            jws.verify_parsed(forged, key, "RS256")
    with pytest.raises(ValueError):
        jws.sign({"a": 1}, der, "HS256", headers={})  # type: ignore[arg-type]


def test_wrapper_requires_one_supported_algorithm(rsa_key):
    parsed = jws.parse_compact(jws.sign({"a": 1}, rsa_key, "RS256", headers={}))
    for algorithm in ("", "none", "HS256", "RS256,ES256"):
        with pytest.raises(ValueError):
            jws.verify_parsed(parsed, rsa_key.public_key(), algorithm)  # type: ignore[arg-type]


def test_a_tampered_payload_or_signature_fails(rsa_key):
    parsed = jws.parse_compact(jws.sign({"a": 1}, rsa_key, "RS256", headers={}))
    tampered_input = parsed.signing_input[:-1] + b"A"
    for candidate in (
        jws.CompactJws(parsed.header, parsed.payload, tampered_input, parsed.signature),
        jws.CompactJws(parsed.header, parsed.payload, parsed.signing_input, parsed.signature[:-1]),
        jws.CompactJws(parsed.header, parsed.payload, parsed.signing_input, b""),
    ):
        with pytest.raises(jws.JwsError):
            jws.verify_parsed(candidate, rsa_key.public_key(), "RS256")


def test_algorithm_mismatch_and_none_are_refused(rsa_key, ec_key):
    rs = jws.parse_compact(jws.sign({"a": 1}, rsa_key, "RS256", headers={}))
    es = jws.parse_compact(jws.sign({"a": 1}, ec_key, "ES256", headers={}))
    with pytest.raises(jws.JwsError):
        jws.verify_parsed(rs, rsa_key.public_key(), "ES256")
    with pytest.raises(jws.JwsError):
        jws.verify_parsed(es, rsa_key.public_key(), "RS256")
    with pytest.raises(jws.JwsError):
        jws.verify_parsed(rs, ec_key.public_key(), "RS256")
    none_header, claims = _b64(b'{"alg":"none"}'), _b64(b'{"a":1}')
    none = f"{none_header}.{claims}."
    with pytest.raises(jws.JwsError):
        jws.parse_compact(none)  # empty signature segment


# --- encoding quirks ----------------------------------------------------------------------


def test_python_jose_accepts_padding_parse_compact_does_not(rsa_key):
    header = _b64(json.dumps({"alg": "RS256"}).encode()) + "="
    payload = _b64(b'{"ab":1}') + "="  # 11 characters + 1 padding
    signing_input = f"{header}.{payload}"
    signature = _b64(jwk.construct(rsa_key, "RS256").sign(signing_input.encode()))
    padded = f"{signing_input}.{signature}"
    assert jose_jws.verify(padded, rsa_key.public_key(), algorithms=["RS256"]) == b'{"ab":1}'
    with pytest.raises(jws.JwsError):
        jws.parse_compact(padded)


def test_python_jose_takes_the_last_duplicate_member_parse_compact_refuses(rsa_key):
    header = _b64(b'{"alg":"RS256","typ":"x","typ":"card-assertion+jwt"}')
    empty = _b64(b"{}")
    assert jose_jws.get_unverified_header(f"{header}.{empty}.AA")["typ"] == "card-assertion+jwt"
    with pytest.raises(jws.JwsError):
        jws.parse_compact(f"{header}.{empty}.AA")
    with pytest.raises(jws.JwsError):
        duplicate = _b64(b'{"n":1,"n":2}')
        empty = _b64(b"{}")
        jws.parse_compact(f"{empty}.{duplicate}.AA")


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "a.b.",
        "e30.e30.A===",
        "e30.e30.A+/",
        "W10.e30.AA",  # header is a JSON array
        "e30.bnVsbA.AA",  # payload is null
        "e30.e30.AB",  # non-canonical last character
    ],
)
def test_parse_compact_rejects_malformed_structure(token):
    with pytest.raises(jws.JwsError):
        jws.parse_compact(token)


def test_es256_signatures_are_jose_raw_not_der(ec_key):
    token = jws.sign({"a": 1}, ec_key, "ES256", headers={"typ": "x"})
    assert len(jws.parse_compact(token).signature) == 64  # r || s, RFC 7518 section 3.4
    jws.verify_parsed(jws.parse_compact(token), ec_key.public_key(), "ES256")


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"typ": "x+jwt", "kid": "k1"}, None),
        ({"typ": "x+jwt", "kid": "k1", "jku": "https://evil.example"}, "unexpected header"),
        ({"typ": "other+jwt", "kid": "k1"}, "unexpected header"),
        ({"typ": "x+jwt"}, "unknown key"),
        ({"typ": "x+jwt", "kid": "k2"}, "unknown key"),
    ],
)
def test_key_id_signed_tokens_need_the_exact_header_and_a_known_key(ec_key, headers, problem):
    token = jws.sign({"a": 1}, ec_key, "ES256", headers=headers)
    keys = {"k1": ec_key.public_key()}
    if problem is None:
        parsed = jws.verify_key_id_signed(
            token, typ="x+jwt", algorithm="ES256", key_for_kid=keys.get
        )
        assert parsed.payload == {"a": 1}
        return
    with pytest.raises(jws.JwsError, match=problem) as caught:
        jws.verify_key_id_signed(token, typ="x+jwt", algorithm="ES256", key_for_kid=keys.get)
    assert not isinstance(caught.value, jws.MalformedJws)


def test_key_id_signed_tokens_reject_another_algorithm_and_another_key(rsa_key, ec_key):
    rs256 = jws.sign({"a": 1}, rsa_key, "RS256", headers={"typ": "x+jwt", "kid": "k1"})
    with pytest.raises(jws.JwsError, match="unexpected header"):
        jws.verify_key_id_signed(
            rs256, typ="x+jwt", algorithm="ES256", key_for_kid={"k1": ec_key.public_key()}.get
        )
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    es256 = jws.sign({"a": 1}, ec_key, "ES256", headers={"typ": "x+jwt", "kid": "k1"})
    with pytest.raises(jws.JwsError) as caught:
        jws.verify_key_id_signed(
            es256, typ="x+jwt", algorithm="ES256", key_for_kid={"k1": other}.get
        )
    assert not isinstance(caught.value, jws.MalformedJws)


def test_key_id_signed_tokens_tell_malformed_structure_apart():
    with pytest.raises(jws.MalformedJws):
        jws.verify_key_id_signed("e30.e30", typ="x+jwt", algorithm="ES256", key_for_kid={}.get)


# --- JWK export and import (python-jose writes and reads them) -----------------------------


def test_public_jwk_round_trip(rsa_key, ec_key):
    es = jws.public_jwk(ec_key.public_key(), "ES256")
    assert set(es) == {"kty", "crv", "x", "y"} and es["crv"] == "P-256"
    back = jws.public_key_from_jwk(es, "ES256")
    assert back.public_numbers() == ec_key.public_key().public_numbers()
    rs = jws.public_jwk(rsa_key.public_key(), "RS256")
    assert set(rs) == {"kty", "n", "e"}
    assert jws.public_key_from_jwk(rs, "RS256").public_numbers() == (
        rsa_key.public_key().public_numbers()
    )


def test_public_key_from_jwk_refuses_anything_else(rsa_key, ec_key):
    es = jws.public_jwk(ec_key.public_key(), "ES256")
    private = jwk.construct(ec_key, "ES256").to_dict()
    off_curve = es | {"y": es["x"]}
    for members in (
        private,  # private members are never a public key
        es | {"crv": "P-384"},
        es | {"kty": "RSA"},
        off_curve,
        {"kty": "EC", "crv": "P-256"},
        jws.public_jwk(rsa_key.public_key(), "RS256"),
        "not a JWK",
        [es],
    ):
        with pytest.raises(jws.JwsError):
            jws.public_key_from_jwk(members, "ES256")
    with pytest.raises(ValueError):
        jws.public_key_from_jwk(es, "HS256")  # type: ignore[arg-type]
