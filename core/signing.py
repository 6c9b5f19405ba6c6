"""The service's own signing keys: receipts, credentials and status lists (ES256).

One key file (``SIGNING_KEY_FILE``, PKCS#8 PEM, P-256) is loaded at first use, or
generated if it does not exist yet (created atomically with mode 0600, so concurrent
workers end up with the same key). A key's ``kid`` is its RFC 7638 JWK thumbprint, so
it is stable and derived from the key alone.

Keys live in a ``KeyRing``: the ``active`` key signs, and every key of the ring is
published in the JWKS (``/.well-known/jwks.json``). Rotation is a matter of building
the ring from more files: publish the next key before it becomes active, keep retired
keys published until every token they signed has expired. ``load_keyring`` is the one
place that decides which files make up the ring.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app

from core import jws

ALGORITHM: jws.Algorithm = "ES256"
_CURVE_BYTES = 32  # P-256 coordinates
_EXTENSION_KEY = "signing_keyring"
_LOCK = threading.Lock()


class SigningKeyError(Exception):
    """The key file is unusable (wrong type, unreadable). Messages are fixed text."""


def jwk_thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an EC public JWK."""
    required = {name: public_jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return jws.b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def _ec_public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": jws.b64url_encode(numbers.x.to_bytes(_CURVE_BYTES, "big")),
        "y": jws.b64url_encode(numbers.y.to_bytes(_CURVE_BYTES, "big")),
    }


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    kid: str
    algorithm: jws.Algorithm = ALGORITHM

    @classmethod
    def from_private_key(cls, private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise SigningKeyError("the signing key must be an EC P-256 private key")
        return cls(private_key, jwk_thumbprint(_ec_public_jwk(private_key.public_key())))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {
            **_ec_public_jwk(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": self.algorithm,
        }


class KeyRing:
    """The active signing key and every key published for verification."""

    def __init__(self, active: SigningKey, published: Iterable[SigningKey] = ()) -> None:
        keys = {active.kid: active}
        for key in published:
            keys.setdefault(key.kid, key)
        self.active = active
        self._keys = keys

    def key(self, kid: str) -> SigningKey | None:
        return self._keys.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self._keys.values()]}

    def sign(self, claims: Mapping[str, Any], typ: str) -> str:
        """Compact ES256 JWS with ``typ`` and the active key's ``kid`` in the header."""
        headers = {"alg": ALGORITHM, "typ": typ, "kid": self.active.kid}
        return jws.sign(dict(claims), self.active.private_key, ALGORITHM, headers)

    def verify(self, token: str, typ: str) -> dict[str, Any]:
        """Checks a token this service signed (header, known kid, signature); returns claims.

        Raises ``jws.JwsError`` on any failure. Claims (iat, exp, ...) are the caller's.
        """
        parsed = jws.parse_compact(token)
        header = parsed.header
        if set(header) - {"alg", "typ", "kid"} or header.get("alg") != ALGORITHM:
            raise jws.JwsError("unexpected header")
        if header.get("typ") != typ:
            raise jws.JwsError("unexpected token type")
        kid = header.get("kid")
        key = self.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise jws.JwsError("unknown key")
        jws.verify_signature(token, key.public_key, [ALGORITHM])
        return parsed.payload


def _write_new_key(path: Path) -> None:
    """Creates the key file atomically; if another process won the race, keeps theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if the file appeared meanwhile
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def load_or_create_key(path: str | os.PathLike[str]) -> SigningKey:
    key_path = Path(path)
    if not key_path.exists():
        _write_new_key(key_path)
    try:
        private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise SigningKeyError("the signing key file cannot be read") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise SigningKeyError("the signing key must be an EC P-256 private key")
    return SigningKey.from_private_key(private_key)


def load_keyring(config: Mapping[str, Any]) -> KeyRing:
    """The ring for this configuration: today one key, from ``SIGNING_KEY_FILE``."""
    return KeyRing(load_or_create_key(config["SIGNING_KEY_FILE"]))


def get_keyring(app: Flask | None = None) -> KeyRing:
    """The app's key ring, loaded (or generated) once per process."""
    application = app or current_app
    ring = application.extensions.get(_EXTENSION_KEY)
    if ring is None:
        with _LOCK:
            ring = application.extensions.get(_EXTENSION_KEY)
            if ring is None:
                ring = load_keyring(application.config)
                application.extensions[_EXTENSION_KEY] = ring
    return ring
