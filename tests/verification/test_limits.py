"""Size limits and malformed input: clear 4xx, never 500; hypothesis on the strict parser."""

from __future__ import annotations

import base64
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import utcnow
from tests.fixtures.verification import Forge, b64url, problem, x5c_entry
from verification.errors import VerificationError
from verification.pipeline import (
    MAX_HEADER_BYTES,
    AssertionRejected,
    step0_size_limits,
    step1_parse,
    step2_algorithm,
    verify_card_assertion,
)

HEADER = {"alg": "RS256", "typ": "card-assertion+jwt"}


def _token(header: dict, claims: dict | None = None, signature: bytes = b"\x01" * 256) -> str:
    return Forge.raw_token(header, claims or {"nonce": "n"}, signature)


def test_body_over_64_kib_is_413(http, verifier):
    _, headers = verifier
    body = json.dumps({"assertion": "a" * (64 * 1024)})
    response = http.post(
        "/v1/verifications",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    problem(response, 413, "payload_too_large")


def test_header_over_16_kib_is_413(http, verifier, verify):
    _, headers = verifier
    big = _token({**HEADER, "x5c": ["A" * (MAX_HEADER_BYTES + 100)]})
    assert len(big) < 64 * 1024
    problem(verify(headers, big), 413, "payload_too_large")


def test_more_than_four_x5c_entries_is_413(verify, verifier, issue_card):
    _, headers = verifier
    card = issue_card()
    x5c = [x5c_entry(card.certificate)] * 5
    problem(verify(headers, _token({**HEADER, "x5c": x5c})), 413, "payload_too_large")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b'"x"', "application/json"),
        (b"{}", "application/json"),
        (b'{"assertion": 5}', "application/json"),
        (b'{"assertion": null}', "application/json"),
        (b'{"assertion": "abc"}', "application/json"),
        (b'{"assertion": "a.b.c.d"}', "application/json"),
        (b'{"assertion": "a=.b.c"}', "application/json"),
        (b'{"assertion": "e30.e30.AA", "extra": 1}', "application/json"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_malformed_requests_are_400(http, verifier, data, content_type):
    _, headers = verifier
    response = http.post(
        "/v1/verifications", data=data, headers={**headers, "Content-Type": content_type}
    )
    problem(response, 400, "invalid_request")


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_a_json_body_in_another_media_type_is_415(http, verifier, content_type):
    _, headers = verifier
    sent = {**headers, "Content-Type": content_type} if content_type else headers
    response = http.post("/v1/verifications", data=b'{"assertion": "e30.e30.AA"}', headers=sent)
    problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "token",
    [
        "e30.e30.AA",  # no typ, no x5c
        "e30.e30.",  # empty signature
        "eyJ9.e30.AA",  # header not JSON
        "e30.W10.AA",  # payload not an object
        "e30.e30.AB",  # non-canonical base64url
        _token({**HEADER, "x5c": "MIIB"}),  # x5c not a list
        _token({**HEADER, "x5c": []}),
        _token({**HEADER, "x5c": [1]}),
        _token({"alg": "RS256", "typ": "JWT", "x5c": ["MIIB"]}),
        _token({**HEADER, "x5c": ["MIIB"], "cty": "JWT"}),  # nested token
        _token({**HEADER, "x5c": ["MIIB"], "zip": "DEF"}),
        _token({**HEADER, "x5c": ["MIIB"], "jku": "https://attacker.example/jwks"}),
        _token({**HEADER, "x5c": ["MIIB"], "x5u": "https://attacker.example/cert"}),
        _token({**HEADER, "x5c": ["MIIB"], "jwk": {"kty": "RSA"}}),
        _token({**HEADER, "x5c": ["MIIB"], "crit": ["exp"]}),
        b64url(b'{"alg":"RS256","alg":"RS256","typ":"card-assertion+jwt","x5c":["A"]}')
        + ".e30.AA",  # duplicate member
    ],
)
def test_malformed_tokens_are_invalid_assertion(verify, verifier, token):
    _, headers = verifier
    problem(verify(headers, token), 401, "invalid_assertion")


@pytest.mark.parametrize("entry", ["!!!", "MIIB", "AAAA", base64.b64encode(b"\x30\x00").decode()])
def test_undecodable_certificates_are_untrusted(verify, verifier, card_authority, entry):
    _, headers = verifier
    problem(verify(headers, _token({**HEADER, "x5c": [entry]})), 401, "untrusted_certificate")


def test_kid_is_allowed_and_ignored(verify, verifier, challenge, audience, licensed_holder, forge):
    _, headers = verifier
    holder = licensed_holder()
    card = holder.card
    token = forge.assertion(
        card.private_key,
        [card.certificate, *card.chain],
        challenge(headers)["nonce"],
        audience,
        header={"kid": "whatever-the-card-says"},
    )
    assert verify(headers, token).status_code == 200


# --- hypothesis: the strict parser only ever raises the pipeline's own errors -------------

_b64url_text = st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=60)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_headers = st.dictionaries(
    st.sampled_from(["alg", "typ", "x5c", "kid", "crit", "jku", "cty", "zip", "b64", "x"]),
    _json_values
    | st.sampled_from(["RS256", "none", "HS256", "card-assertion+jwt"])
    | st.lists(st.text(max_size=30), max_size=6),
    max_size=6,
)


def _parse_only(token: str) -> None:
    step0_size_limits(token)
    parsed = step1_parse(token)
    step2_algorithm(parsed.header)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.builds(".".join, st.lists(_b64url_text, max_size=5))))
def test_parser_on_arbitrary_strings(token):
    try:
        _parse_only(token)
    except VerificationError as error:
        assert error.status in (400, 401, 413)


@settings(max_examples=300, deadline=None)
@given(header=_headers, payload=_json_values, signature=st.binary(max_size=40))
def test_parser_on_arbitrary_json(header, payload, signature):
    encoded_payload = b64url(json.dumps(payload).encode())
    token = f"{b64url(json.dumps(header).encode())}.{encoded_payload}.{b64url(signature)}"
    try:
        _parse_only(token)
    except VerificationError as error:
        assert error.status in (400, 401, 413)
    else:
        # Whatever passes steps 0-2 has exactly the allowed shape.
        assert set(header) <= {"alg", "typ", "x5c", "kid"}
        assert header["alg"] == "RS256" and header["typ"] == "card-assertion+jwt"
        assert isinstance(payload, dict) and 1 <= len(header["x5c"]) <= 4


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    header=_headers,
    x5c=st.lists(st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()), max_size=5),
    payload=_json_values,
)
def test_whole_pipeline_never_fails_with_an_unexpected_error(
    app, card_authority, db_session, header, x5c, payload
):
    header = {**header, "x5c": x5c} if x5c else header
    token = Forge.raw_token(header, payload, b"\x02" * 256)
    with app.test_request_context():
        try:
            verify_card_assertion(
                db_session, token, lambda *_: None, audience="urn:a", now=utcnow()
            )
        except VerificationError as error:
            assert error.status in (400, 401, 403, 413, 503)
        except AssertionRejected as rejected:
            assert rejected.error.status in (401, 403, 503)


# --- duplicate extensions: parsed lazily by cryptography, refused without a 500 -------------


def _resign(der: bytes, tbs: bytes, patched_tbs: bytes, key) -> bytes:
    """The same structure with a patched (same-length) TBS and a fresh RSA signature."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    assert len(patched_tbs) == len(tbs) and der.count(tbs) == 1
    signature = key.sign(patched_tbs, padding.PKCS1v15(), hashes.SHA256())
    assert der.endswith(b"\x03\x82\x01\x01\x00" + der[-256:])
    return der.replace(tbs, patched_tbs)[:-256] + signature


_PLACEHOLDER_OID = "2.5.29.99"  # DER 55 1D 63, patched into a real extension's OID


def _issuing_key(card_authority):
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    path = Path(card_authority.directory) / "issuing-ca.key.pem"
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def test_crl_with_a_duplicate_extension_is_invalid_crl(http, card_authority, make_client):
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    key = _issuing_key(card_authority)
    now = datetime.now(UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(card_authority.issuing_certificate.subject)
        .last_update(now)
        .next_update(now + timedelta(hours=1))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(_PLACEHOLDER_OID), b"\x02\x01\x02"),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    tbs = crl.tbs_certlist_bytes
    patched = tbs.replace(b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x14")  # CRLNumber
    der = _resign(crl.public_bytes(serialization.Encoding.DER), tbs, patched, key)
    _, headers = make_client("card_authority")
    response = http.put(
        "/v1/card-authority/crl",
        data=der,
        headers={**headers, "Content-Type": "application/pkix-crl"},
    )
    problem(response, 422, "invalid_crl")


def test_card_with_a_duplicate_extension_is_untrusted(
    verify, verifier, challenge, audience, card_authority, forge, publish_crl
):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    publish_crl()
    _, headers = verifier
    key = forge.key()
    extra = x509.UnrecognizedExtension(x509.ObjectIdentifier(_PLACEHOLDER_OID), b"\x03\x02\x07\x80")
    cert = Forge.certificate(
        subject=Forge.name("DUPLICATE"),
        subject_key=key,
        issuer=card_authority.issuing_certificate.subject,
        issuer_key=_issuing_key(card_authority),
        ca=False,
        extra=[(extra, True)],
    )
    tbs = cert.tbs_certificate_bytes
    patched = tbs.replace(b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x0f")  # keyUsage
    der = _resign(
        cert.public_bytes(serialization.Encoding.DER), tbs, patched, _issuing_key(card_authority)
    )
    duplicate = x509.load_der_x509_certificate(der)
    token = forge.assertion(
        key,
        [duplicate, card_authority.issuing_certificate],
        challenge(headers)["nonce"],
        audience,
    )
    problem(verify(headers, token), 401, "untrusted_certificate")
