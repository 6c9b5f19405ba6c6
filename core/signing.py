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

Rotation (``rotate_signing_key``, ``flask signing rotate``): the active key's *public*
part is written to the retired-keys folder (``SIGNING_RETIRED_KEYS_DIR``, default
``retired-signing-keys/`` beside the key file) with a ``publish_until`` of now plus
``SIGNING_KEY_RETENTION`` seconds (default 25 hours: the longest-lived token signed is a
24-hour credential), then a new key atomically replaces the key file. The retired
private key is discarded: it never signs again. A retired key stays in the JWKS and
keeps verifying our own tokens until ``publish_until``, then drops out on its own.
Every worker notices a rotation on its next use (the files' stat changes).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app

from core import audit, jws
from core.audit import console_operator
from core.cli import ServiceGroup
from core.db import get_session, utcnow
from core.files import write_atomic
from core.text import clean_text

ALGORITHM: jws.Algorithm = "ES256"
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
    return jws.public_jwk(public_key, ALGORITHM)


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


@dataclass(frozen=True)
class VerificationKey:
    """A retired key: public part only, published (and trusted) until ``publish_until``."""

    public_key: ec.EllipticCurvePublicKey
    kid: str
    publish_until: datetime
    algorithm: jws.Algorithm = ALGORITHM

    @classmethod
    def from_jwk(cls, public_jwk: Mapping[str, Any], publish_until: datetime) -> VerificationKey:
        try:
            public_key = jws.public_key_from_jwk(dict(public_jwk), ALGORITHM)
        except (TypeError, ValueError, jws.JwsError):
            raise SigningKeyError("a retired key record is not an EC P-256 public key") from None
        return cls(public_key, jwk_thumbprint(_ec_public_jwk(public_key)), publish_until)

    def public_jwk(self) -> dict[str, str]:
        return {
            **_ec_public_jwk(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": self.algorithm,
        }


class KeyRing:
    """The active signing key and every key published for verification.

    Retired keys (``VerificationKey``) count only until their ``publish_until``, checked
    at each call, so they leave the JWKS and stop verifying without a reload.
    """

    def __init__(
        self, active: SigningKey, published: Iterable[SigningKey | VerificationKey] = ()
    ) -> None:
        keys: dict[str, SigningKey | VerificationKey] = {active.kid: active}
        for key in published:
            keys.setdefault(key.kid, key)
        self.active = active
        self._keys = keys

    def _live(self, now: datetime | None) -> list[SigningKey | VerificationKey]:
        at = now or utcnow()
        return [
            key
            for key in self._keys.values()
            if not isinstance(key, VerificationKey) or key.publish_until > at
        ]

    def key(self, kid: str, now: datetime | None = None) -> SigningKey | VerificationKey | None:
        key = self._keys.get(kid)
        if isinstance(key, VerificationKey) and key.publish_until <= (now or utcnow()):
            return None
        return key

    def jwks(self, now: datetime | None = None) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self._live(now)]}

    def sign(self, claims: Mapping[str, Any], typ: str) -> str:
        """Compact ES256 JWS with ``typ`` and the active key's ``kid`` in the header."""
        headers = {"alg": ALGORITHM, "typ": typ, "kid": self.active.kid}
        return jws.sign(dict(claims), self.active.private_key, ALGORITHM, headers)

    def verify(self, token: str, typ: str) -> dict[str, Any]:
        """Checks a token this service signed (header, known kid, signature); returns claims.

        Raises ``jws.JwsError`` on any failure. Claims (iat, exp, ...) are the caller's.
        """

        def public_key(kid: str) -> Any | None:
            key = self.key(kid)
            return key.public_key if key is not None else None

        parsed = jws.verify_key_id_signed(
            token, typ=typ, algorithm=ALGORITHM, key_for_kid=public_key
        )
        return parsed.payload


def _new_private_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_or_create_key(path: str | os.PathLike[str]) -> SigningKey:
    key_path = Path(path)
    if not key_path.exists():
        # Concurrent workers: the first file written wins, the others load it.
        write_atomic(key_path, _new_private_key_pem(), mode=0o600, replace=False)
    try:
        private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise SigningKeyError("the signing key file cannot be read") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise SigningKeyError("the signing key must be an EC P-256 private key")
    return SigningKey.from_private_key(private_key)


def retired_keys_dir(config: Mapping[str, Any]) -> Path:
    return Path(config["SIGNING_RETIRED_KEYS_DIR"])


def load_retired_keys(config: Mapping[str, Any]) -> list[VerificationKey]:
    """Every retired key record (expired ones too; the ring filters them by time)."""
    folder = retired_keys_dir(config)
    if not folder.is_dir():
        return []
    keys = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            until = datetime.fromisoformat(record["publish_until"])
        except (OSError, ValueError, KeyError, TypeError):
            raise SigningKeyError("a retired key record cannot be read") from None
        if until.tzinfo is None:
            raise SigningKeyError("a retired key record has no time zone")
        key = VerificationKey.from_jwk(record.get("jwk") or {}, until)
        if key.kid != record.get("kid"):
            raise SigningKeyError("a retired key record's kid does not match its key")
        keys.append(key)
    return keys


def load_keyring(config: Mapping[str, Any]) -> KeyRing:
    """The ring for this configuration: the active key from ``SIGNING_KEY_FILE`` and the
    retired keys of ``retired_keys_dir``."""
    return KeyRing(load_or_create_key(config["SIGNING_KEY_FILE"]), load_retired_keys(config))


@dataclass(frozen=True)
class Rotation:
    retired_kid: str
    active_kid: str
    publish_until: datetime


def rotate_signing_key(config: Mapping[str, Any], *, now: datetime | None = None) -> Rotation:
    """Retires the active key (public part kept for ``retention``) and activates a new one.

    The retired record is written before the key file is replaced, so a crash in
    between leaves the old key active and published: never an unpublished signer.
    """
    at = now or utcnow()
    key_path = Path(config["SIGNING_KEY_FILE"])
    with _LOCK:
        current = load_or_create_key(key_path)
        until = at + timedelta(seconds=config["SIGNING_KEY_RETENTION"])
        record = {
            "kid": current.kid,
            "jwk": _ec_public_jwk(current.public_key),
            "retired_at": at.isoformat(),
            "publish_until": until.isoformat(),
        }
        write_atomic(
            retired_keys_dir(config) / f"{current.kid}.json",
            json.dumps(record, indent=2).encode("ascii"),
        )
        write_atomic(key_path, _new_private_key_pem(), mode=0o600)
    return Rotation(current.kid, load_or_create_key(key_path).kid, until)


def prune_retired_keys(config: Mapping[str, Any], *, now: datetime | None = None) -> list[str]:
    """Deletes retired key records past their ``publish_until``; returns their kids."""
    at = now or utcnow()
    removed = []
    for key in load_retired_keys(config):
        if key.publish_until <= at:
            (retired_keys_dir(config) / f"{key.kid}.json").unlink(missing_ok=True)
            removed.append(key.kid)
    return removed


def _watched_paths(config: Mapping[str, Any]) -> tuple[str, str]:
    return (str(config["SIGNING_KEY_FILE"]), str(retired_keys_dir(config)))


def _files_state(paths: tuple[str, str]) -> tuple[Any, ...]:
    """Changes whenever the key file is replaced or a key is retired (any process).

    Plain ``os.stat`` of prepared path strings: it runs on every signature (hot path)."""
    state: list[Any] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            state.append(None)
        else:
            state.append((info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(state)


@dataclass(frozen=True)
class _LoadedKeyring:
    paths: tuple[str, str]
    state: tuple[Any, ...]
    ring: KeyRing


def get_keyring(app: Flask | None = None) -> KeyRing:
    """The app's key ring, loaded (or generated) on first use and reloaded after a
    rotation (by this process or another: the files' stat is checked on each use)."""
    application = app or current_app
    loaded: _LoadedKeyring | None = application.extensions.get(_EXTENSION_KEY)
    if loaded is not None and _files_state(loaded.paths) == loaded.state:
        return loaded.ring
    with _LOCK:
        paths = _watched_paths(application.config)
        loaded = application.extensions.get(_EXTENSION_KEY)
        if loaded is None or _files_state(paths) != loaded.state:
            ring = load_keyring(application.config)
            # Taken after loading: a key file created by the load is part of it.
            loaded = _LoadedKeyring(paths, _files_state(paths), ring)
            application.extensions[_EXTENSION_KEY] = loaded
    return loaded.ring


signing_cli = ServiceGroup("signing", help="The service's signing keys (JWKS).")


def init_app(app: Flask) -> None:
    app.cli.add_command(signing_cli)


@signing_cli.command("rotate")
@click.option("--actor", default=console_operator, show_default="the OS user")
def rotate_command(actor: str) -> None:
    """Activate a new signing key; the old one stays published until its tokens expire."""
    rotation = rotate_signing_key(current_app.config)
    session = get_session()
    audit.record(
        session,
        actor=clean_text(actor, field="actor", max_length=200),
        action="signing_key.rotate",
        target=rotation.active_kid,
        details={"retired": rotation.retired_kid, "active": rotation.active_kid},
    )
    session.commit()
    click.echo(f"retired {rotation.retired_kid} (published until {rotation.publish_until})")
    click.echo(f"active  {rotation.active_kid}")


@signing_cli.command("keys")
def keys_command() -> None:
    """List the published keys: the active one and retired ones still published."""
    ring = get_keyring()
    click.echo(f"{ring.active.kid}\tactive")
    for key in load_retired_keys(current_app.config):
        if ring.key(key.kid) is not None:
            click.echo(f"{key.kid}\tretired, published until {key.publish_until.isoformat()}")


@signing_cli.command("prune")
def prune_command() -> None:
    """Delete retired key records that are no longer published."""
    for kid in prune_retired_keys(current_app.config):
        click.echo(f"removed {kid}")
