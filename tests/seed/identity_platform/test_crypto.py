"""Code construction details, and backstops pinning the cryptography behaviour we rely on."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import given
from hypothesis import strategies as st

from identity.errors import IdentityKeyError, InvalidAgencyCode
from seed.identity_platform.crypto import PlatformCrypto, check_agency, new_person_ids
from seed.identity_platform.keys import HKDF_SALT, derive


def _crypto(versions=(1,)) -> PlatformCrypto:
    keys = {v: bytes([v]) * 32 for v in versions}
    return PlatformCrypto(lambda: keys)


def test_aessiv_is_deterministic_and_binds_associated_data():
    key = AESSIV.generate_key(512)
    siv = AESSIV(key)
    sealed = siv.encrypt(b"0123456789abcdef", [b"a", b"b"])
    assert sealed == siv.encrypt(b"0123456789abcdef", [b"a", b"b"])
    assert len(sealed) == 32  # 16-byte synthetic IV + 16-byte ciphertext
    assert siv.decrypt(sealed, [b"a", b"b"]) == b"0123456789abcdef"
    for wrong in ([b"a"], [b"b", b"a"], [b"a", b"c"], None):
        with pytest.raises(InvalidTag):
            siv.decrypt(sealed, wrong)
    with pytest.raises(ValueError):
        AESSIV(b"\x00" * 16)  # 128-bit keys are not AES-SIV keys


def test_hkdf_labels_give_independent_keys():
    master = b"\x07" * 32
    assert derive(master, b"a", 32) != derive(master, b"b", 32)
    assert derive(master, b"a", 64)[:32] == derive(master, b"a", 32)  # HKDF-Expand prefix
    assert HKDF_SALT  # a fixed, non-empty application salt


def test_codes_differ_per_version_and_agency_and_decode():
    crypto = _crypto((1, 2))
    person = new_person_ids(1)[0]
    codes = {crypto.encode(person, a, v) for a in ("licensing", "verifier:x") for v in (1, 2)}
    assert len(codes) == 4
    assert crypto.decode(crypto.encode(person, "verifier:x", 2), "verifier:x") == (2, person)


def test_non_canonical_base64_is_rejected():
    crypto = _crypto()
    code = crypto.encode(new_person_ids(1)[0], "licensing", 1)
    prefix, body = code.split(".")
    raw = base64.urlsafe_b64decode(body + "=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(body[-1])
    assert last % 4 == 0  # the two spare bits are zero
    twin = body[:-1] + alphabet[last + 1]
    assert base64.urlsafe_b64decode(twin + "=") == raw  # same bytes, other spelling
    with pytest.raises(InvalidAgencyCode):
        crypto.decode(f"{prefix}.{twin}", "licensing")


def test_unknown_versions_reload_keys_at_most_once_a_second():
    loads = []
    keys = {1: b"\x01" * 32}

    def load():
        loads.append(1)
        return keys

    crypto = PlatformCrypto(load)
    crypto.reload()
    code = crypto.encode(new_person_ids(1)[0], "licensing", 1)
    forged = code.replace("v1.", "v9.")
    for _ in range(20):
        with pytest.raises(InvalidAgencyCode):
            crypto.decode(forged, "licensing")
    assert len(loads) == 1  # client input does not hammer the key source
    with pytest.raises(IdentityKeyError):
        crypto.master(9)  # the store asking for a version always reloads
    assert len(loads) == 2


def test_my_numbers_at_rest_are_bound_to_person_and_version():
    crypto = _crypto((1, 2))
    a, b = new_person_ids(2)
    sealed = crypto.seal_my_number(a, "123456789018", 1)
    assert crypto.open_my_number(a, sealed, 1) == "123456789018"
    assert sealed != crypto.seal_my_number(a, "123456789018", 1)  # random nonce
    with pytest.raises(IdentityKeyError):
        crypto.open_my_number(b, sealed, 1)  # moved to another person
    with pytest.raises(IdentityKeyError):
        crypto.open_my_number(a, sealed, 2)
    assert crypto.blind_index("123456789018", 1) == crypto.blind_index("123456789018", 1)
    assert crypto.blind_index("123456789018", 1) != crypto.blind_index("123456789018", 2)


@given(st.text(max_size=250))
def test_agency_labels(label):
    ok = 0 < len(label) <= 200 and label.isascii() and label.isprintable()
    if ok:
        assert check_agency(label) == label.encode()
    else:
        with pytest.raises(ValueError):
            check_agency(label)
