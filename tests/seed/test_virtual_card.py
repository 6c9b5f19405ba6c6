"""Virtual cards: PIN-protected key, retry counter, and the card assertion."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core import jws
from seed.virtual_card import (
    ASSERTION_TYPE,
    CardFileInvalid,
    CardLocked,
    InvalidPinFormat,
    VirtualCard,
    WrongPin,
)

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


def test_card_file_keeps_the_key_encrypted(issue_card):
    card = issue_card()
    raw = card.path.read_bytes()
    key_der = card.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert b"PRIVATE KEY" not in raw
    assert base64.b64encode(key_der) not in raw
    assert stat.S_IMODE(card.path.stat().st_mode) == 0o600
    document = json.loads(raw)
    assert document["key"]["kdf"] == "scrypt"
    assert document["key"]["cipher"] == "AES-256-GCM"

    loaded = VirtualCard.load(card.path)
    assert loaded.certificate == card.certificate
    assert loaded.chain == card.chain
    assert loaded.unlock(card.pin).private_numbers() == card.private_key.private_numbers()


def test_sign_assertion_is_the_contracts_card_assertion(issue_card, card_authority):
    card = issue_card()

    token = card.card.sign_assertion(
        card.pin, nonce="n-123", audience="urn:test", now=NOW, lifetime=120
    )

    parsed = jws.parse_compact(token)
    assert parsed.header == {
        "alg": "RS256",
        "typ": ASSERTION_TYPE,
        "x5c": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in (card.certificate, card_authority.issuing_certificate)
        ],
    }
    iat = int(NOW.timestamp())
    assert parsed.payload == {"aud": "urn:test", "nonce": "n-123", "iat": iat, "exp": iat + 120}
    # Signed by the card's key; the leaf in x5c carries the matching public key.
    leaf = x509.load_der_x509_certificate(base64.b64decode(parsed.header["x5c"][0]))
    jws.verify_parsed(parsed, leaf.public_key(), "RS256")


def test_three_wrong_pins_lock_the_card(issue_card):
    card = issue_card(pin="2468")

    with pytest.raises(WrongPin) as first:
        card.card.sign_assertion("0000", nonce="n", audience="a")
    assert first.value.remaining_attempts == 2
    with pytest.raises(WrongPin) as second:
        VirtualCard.load(card.path).sign_assertion("1111", nonce="n", audience="a")
    assert second.value.remaining_attempts == 1  # the counter lives in the file
    with pytest.raises(CardLocked):
        card.card.sign_assertion("2222", nonce="n", audience="a")

    # Locked for good: even the right PIN is refused, with a clear message.
    with pytest.raises(CardLocked) as locked:
        card.card.sign_assertion("2468", nonce="n", audience="a")
    assert "locked" in str(locked.value)
    assert "cannot sign" in str(locked.value)
    assert VirtualCard.load(card.path).locked


def test_correct_pin_resets_the_counter(issue_card):
    card = issue_card()
    for _ in range(2):
        with pytest.raises(WrongPin):
            card.card.unlock("9999")
    assert card.card.remaining_attempts == 1

    card.card.sign_assertion(card.pin, nonce="n", audience="a")

    assert card.card.failed_attempts == 0
    for _ in range(2):  # two more wrong PINs do not lock it
        with pytest.raises(WrongPin):
            card.card.unlock("9999")
    assert not card.card.locked


@pytest.mark.parametrize("pin", ["123", "12345", "abcd", "１２３４", ""])
def test_malformed_pin_is_refused_without_counting(issue_card, pin):
    card = issue_card()
    with pytest.raises(InvalidPinFormat):
        card.card.unlock(pin)
    assert card.card.failed_attempts == 0


def test_create_checks_pin_and_key(tmp_path, issue_card, card_key_pool):
    card = issue_card()
    with pytest.raises(InvalidPinFormat):
        VirtualCard.create(tmp_path / "c.json", card.private_key, card.certificate, [], "12")
    other_key = card_key_pool.key(99)
    with pytest.raises(ValueError):
        VirtualCard.create(tmp_path / "c.json", other_key, card.certificate, [], "1234")


def test_not_a_card_file(tmp_path):
    path = tmp_path / "nope.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(CardFileInvalid):
        VirtualCard.load(path)
    with pytest.raises(CardFileInvalid):
        VirtualCard.load(tmp_path / "missing.json")
