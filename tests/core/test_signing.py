"""The service's signing key: generated once, RFC 7638 kid, JWKS, sign/verify."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core import jws
from core.signing import (
    KeyRing,
    SigningKey,
    SigningKeyError,
    jwk_thumbprint,
    load_or_create_key,
)


def test_rfc7638_thumbprint_example():
    # RFC 7638 section 3.1 (an RSA key) checks the canonical-JSON construction; our keys
    # are EC, whose required members are crv, kty, x, y (section 3.2).
    ec_jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        "kid": "ignored",
    }
    assert jwk_thumbprint(ec_jwk) == jwk_thumbprint({k: ec_jwk[k] for k in "kty crv x y".split()})
    assert len(jwk_thumbprint(ec_jwk)) == 43


def test_key_is_generated_once_with_private_mode(tmp_path):
    path = tmp_path / "keys" / "signing-key.pem"
    first = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = load_or_create_key(path)
    assert first.kid == second.kid
    assert isinstance(first.private_key.curve, ec.SECP256R1)
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_concurrent_first_use_ends_with_one_key(tmp_path):
    path = tmp_path / "signing-key.pem"
    kids: list[str] = []

    def load():
        kids.append(load_or_create_key(path).kid)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(kids)) == 1


def test_wrong_key_type_is_refused(tmp_path):
    path = tmp_path / "rsa.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SigningKeyError):
        load_or_create_key(path)
    (tmp_path / "garbage.pem").write_bytes(b"not a key")
    with pytest.raises(SigningKeyError):
        load_or_create_key(tmp_path / "garbage.pem")


def test_jwks_lists_public_members_only_and_kid_is_the_thumbprint(tmp_path):
    key = load_or_create_key(tmp_path / "k.pem")
    jwks = KeyRing(key).jwks()
    (published,) = jwks["keys"]
    assert set(published) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert published["kid"] == key.kid == jwk_thumbprint(published)
    assert published["alg"] == "ES256" and published["use"] == "sig"
    assert '"d"' not in json.dumps(jwks)  # no private member


def test_sign_and_verify_with_kid_and_typ(tmp_path):
    ring = KeyRing(load_or_create_key(tmp_path / "k.pem"))
    token = ring.sign({"a": 1}, "example+jwt")
    header = jws.parse_compact(token).header
    assert header == {"alg": "ES256", "typ": "example+jwt", "kid": ring.active.kid}
    assert ring.verify(token, "example+jwt") == {"a": 1}
    with pytest.raises(jws.JwsError):
        ring.verify(token, "other+jwt")
    other = KeyRing(SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(jws.JwsError):
        other.verify(token, "example+jwt")  # unknown kid


def test_rotation_ring_publishes_old_and_new_and_verifies_both(tmp_path):
    old = load_or_create_key(tmp_path / "old.pem")
    new = load_or_create_key(tmp_path / "new.pem")
    old_token = KeyRing(old).sign({"n": 1}, "t")
    ring = KeyRing(new, published=[old])
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid, old.kid]
    assert ring.verify(old_token, "t") == {"n": 1}
    assert jws.parse_compact(ring.sign({"n": 2}, "t")).header["kid"] == new.kid
