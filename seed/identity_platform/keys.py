"""Versioned master keys of the embedded identity platform, and what HKDF derives from them.

Where the master keys come from (first match wins):

1. ``IDENTITY_MASTER_KEY`` (app config or environment): comma-separated
   ``<version>:<key>`` entries, each key 32 random bytes in base64url, e.g.
   ``1:Zm9v...,2:YmFy...``; a bare key is version 1. Keys from the environment are
   never written anywhere; to rotate, append a new version to the variable (print
   one with ``flask --app app identity-platform new-key``), restart, then run
   ``identity-platform rotate-keys``.
2. ``IDENTITY_MASTER_KEY_FILE`` (default ``instance/identity_platform/master-keys.json``),
   created with a fresh version 1 (mode 0600) on first use. ``rotate-keys`` appends a
   version to it. Old versions are kept: they still decode codes issued before.

Every key the platform uses is derived from a master key version with HKDF-SHA256 and
a purpose label: one AES-SIV key per agency for codes, an AES-GCM key for the My
Numbers at rest, a MAC key for their blind index, and a fingerprint that the store
records so that a wrong or regenerated master key is detected instead of silently
enrolling everyone again.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.files import write_atomic
from identity.errors import IdentityKeyError

MASTER_KEY_BYTES = 32
ENV_VAR = "IDENTITY_MASTER_KEY"
FILE_FORMAT = "identity-platform-master-keys/1"
HKDF_SALT = b"licence-verification/identity-platform/hkdf-salt/1"
_ENV_ENTRY = re.compile(r"^(?:([1-9][0-9]{0,5}):)?([A-Za-z0-9_-]{43}=?)$")


def new_master_key() -> str:
    """A fresh master key in the base64url form the key file and env var use."""
    return _b64(secrets.token_bytes(MASTER_KEY_BYTES))


def derive(master_key: bytes, purpose: bytes, length: int) -> bytes:
    """HKDF-SHA256 with a fixed application salt and the purpose as ``info``."""
    return HKDF(algorithm=SHA256(), length=length, salt=HKDF_SALT, info=purpose).derive(master_key)


def fingerprint(master_key: bytes) -> str:
    """A public value that identifies a master key without revealing it."""
    return derive(master_key, b"master-key-fingerprint", 32).hex()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=")
    except (binascii.Error, ValueError):
        raise IdentityKeyError("A master key is not valid base64url.") from None
    if len(raw) != MASTER_KEY_BYTES:
        raise IdentityKeyError("A master key must be 32 bytes.")
    return raw


def parse_env_keys(value: str) -> dict[int, bytes]:
    """``1:<key>,2:<key>`` (or a bare key, version 1) -> {version: key}."""
    keys: dict[int, bytes] = {}
    for entry in (part.strip() for part in value.split(",")):
        match = _ENV_ENTRY.match(entry)
        if not match:
            raise IdentityKeyError(
                f"{ENV_VAR} must be '<version>:<base64url key>' entries separated by commas."
            )
        version = int(match.group(1) or 1)
        if version in keys:
            raise IdentityKeyError(f"{ENV_VAR} names a key version twice.")
        keys[version] = _unb64_key(match.group(2))
    return keys


class MasterKeySource:
    """Loads (and, for the file, creates and extends) the versioned master keys."""

    def __init__(self, key_file: str | os.PathLike[str], env_value: str | None) -> None:
        self.key_file = Path(key_file)
        self.env_value = env_value or None

    @property
    def writable(self) -> bool:
        return self.env_value is None

    @property
    def description(self) -> str:
        return f"environment variable {ENV_VAR}" if self.env_value else str(self.key_file)

    def load(self) -> dict[int, bytes]:
        """Every known version; creates the key file with version 1 when there is none."""
        if self.env_value is not None:
            return parse_env_keys(self.env_value)
        if not self.key_file.exists():
            self._create()
        return self._read_file()

    def add_version(self) -> int:
        """Appends a fresh key version to the key file and returns its number."""
        if not self.writable:
            raise IdentityKeyError(
                f"Master keys come from {ENV_VAR}: append a new '<version>:<key>' entry "
                "there (see 'identity-platform new-key'), then run rotate-keys again."
            )
        keys = self.load()
        version = max(keys) + 1
        keys[version] = secrets.token_bytes(MASTER_KEY_BYTES)
        self._write_replace(keys)
        return version

    # -- file handling ------------------------------------------------------------

    def _serialise(self, keys: Mapping[int, bytes]) -> bytes:
        body = {"format": FILE_FORMAT, "keys": {str(v): _b64(k) for v, k in sorted(keys.items())}}
        return (json.dumps(body, indent=2) + "\n").encode("ascii")

    def _create(self) -> None:
        # Two processes starting at once must agree on one key: the file appears
        # atomically (hard link of a complete temp file) and the loser reads the winner's.
        self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        content = self._serialise({1: secrets.token_bytes(MASTER_KEY_BYTES)})
        write_atomic(self.key_file, content, mode=0o600, replace=False)

    def _write_replace(self, keys: Mapping[int, bytes]) -> None:
        write_atomic(self.key_file, self._serialise(keys), mode=0o600)

    def _read_file(self) -> dict[int, bytes]:
        try:
            body = json.loads(self.key_file.read_text(encoding="ascii"))
        except (OSError, ValueError):
            raise IdentityKeyError("The master key file cannot be read.") from None
        if not isinstance(body, dict) or body.get("format") != FILE_FORMAT:
            raise IdentityKeyError("The master key file has an unknown format.")
        entries = body.get("keys")
        if not isinstance(entries, dict) or not entries:
            raise IdentityKeyError("The master key file holds no keys.")
        keys: dict[int, bytes] = {}
        for version, key in entries.items():
            if not (isinstance(version, str) and version.isdigit() and int(version) > 0):
                raise IdentityKeyError("The master key file has a bad key version.")
            if not isinstance(key, str):
                raise IdentityKeyError("The master key file has a bad key.")
            keys[int(version)] = _unb64_key(key)
        return keys
