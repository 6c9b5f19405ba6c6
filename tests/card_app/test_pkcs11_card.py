"""The PKCS#11 backend against a real SoftHSM2 token holding a demo-authority card."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from card_app.assertion import sign_assertion, x5c
from card_app.pkcs11_card import (
    KeyNotFound,
    ModuleNotLoadable,
    Pkcs11Card,
    TokenNotFound,
    TokenPinIncorrect,
    TokenPinLocked,
)
from core import jws


def test_signs_an_assertion_the_certificate_verifies(issue_card, softhsm_token):
    issued = issue_card()
    token = softhsm_token(issued)
    card = Pkcs11Card(token.module, token_label=token.label)

    assert card.certificate == issued.certificate
    assert card.chain == issued.chain  # the issuing CA, read from the token
    assertion = sign_assertion(
        card, token.pin, nonce="n-1", audience="urn:test", verifier="c1", consent=["monitoring"]
    )
    parsed = jws.parse_compact(assertion)
    assert parsed.header == {
        "alg": "RS256",
        "typ": "card-assertion+jwt",
        "x5c": x5c(issued.certificate, issued.chain),
    }
    assert parsed.payload["verifier"] == "c1"
    assert parsed.payload["consent"] == ["monitoring"]
    parsed_again = jws.parse_compact(assertion)
    jws.verify_parsed(parsed_again, issued.certificate.public_key(), "RS256")
    other = issue_card()
    with pytest.raises(jws.JwsError):
        jws.verify_parsed(parsed_again, other.certificate.public_key(), "RS256")


def test_key_by_label_or_id_and_certificates_from_files(issue_card, softhsm_token, tmp_path):
    issued = issue_card()
    token = softhsm_token(issued, key_label="User Authentication Key", with_chain=False)
    by_label = Pkcs11Card(token.module, key_label="User Authentication Key")
    assert by_label.chain == []  # no CA on the token and no file
    chain_file = tmp_path / "chain.pem"
    chain_file.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain)
    )
    cert_file = tmp_path / "card.der"
    cert_file.write_bytes(issued.certificate.public_bytes(serialization.Encoding.DER))
    by_id = Pkcs11Card(
        token.module, key_id=b"\x01", certificate_file=cert_file, chain_file=chain_file
    )
    assert by_id.chain == issued.chain
    signature = by_id.sign(token.pin, b"data")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    issued.certificate.public_key().verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(KeyNotFound, match="--key-label or --key-id"):
        Pkcs11Card(token.module, key_label="no such key")


def test_wrong_pin_says_so_and_warns_when_tries_run_low(issue_card, softhsm_token):
    token = softhsm_token(issue_card())
    card = Pkcs11Card(token.module)
    with pytest.raises(TokenPinIncorrect, match=r"^Wrong PIN\.") as first:
        card.sign("9999", b"data")
    assert "\n" not in str(first.value)
    # SoftHSM2 raises "count low" after a failure, as cards do near their limit.
    with pytest.raises(TokenPinIncorrect, match="Few tries are left"):
        card.sign("9999", b"data")
    assert card.sign(token.pin, b"data")  # the right PIN still works


def test_a_locked_token_is_refused_before_the_pin_is_sent(issue_card, softhsm_token):
    token = softhsm_token(issue_card())
    card = Pkcs11Card(token.module)
    token.lock()
    with pytest.raises(TokenPinLocked, match="locked after too many wrong tries") as locked:
        card.sign(token.pin, b"data")
    assert "\n" not in str(locked.value)


def test_missing_token_and_module_are_one_line(issue_card, softhsm_token, tmp_path):
    token = softhsm_token(issue_card())
    with pytest.raises(TokenNotFound, match="labelled 'other'"):
        Pkcs11Card(token.module, token_label="other")
    with pytest.raises(ModuleNotLoadable, match="--pkcs11-module"):
        Pkcs11Card(str(tmp_path / "missing.so"))
