"""What belongs to a verifier stays sealed in the licensing database: its own code for a
person (another agency's code, which this database must not hold in the clear) and the
receipt that names it. Sealed with Fernet under a key kept outside the database
(``WEB_DATA_KEY_FILE``, default ``instance/web-data-key``, 0600); a keyed digest of the
code lets the history be filtered by it without unsealing every row."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from flask import Flask, current_app

from core.files import file_lock, write_atomic

_EXTENSION_KEY = "web.sealing"
KEY_BYTES = 32


@dataclass(frozen=True)
class Sealer:
    fernet: Fernet
    digest_key: bytes

    def seal(self, text: str | None) -> str | None:
        return None if text is None else self.fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def unseal(self, token: str | None) -> str | None:
        return None if token is None else self.fernet.decrypt(token.encode("ascii")).decode("utf-8")

    def digest(self, text: str) -> str:
        return hmac.new(self.digest_key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def key_file(app: Flask) -> Path:
    configured = app.config.get("WEB_DATA_KEY_FILE")
    return Path(configured) if configured else Path(app.config["INSTANCE_PATH"]) / "web-data-key"


def _load_or_create(path: Path) -> bytes:
    with file_lock(path.with_name(f".{path.name}.lock")):
        if not path.exists():
            raw = base64.urlsafe_b64encode(secrets.token_bytes(2 * KEY_BYTES))
            write_atomic(path, raw, mode=0o600)
    material = base64.urlsafe_b64decode(path.read_bytes().strip())
    if len(material) != 2 * KEY_BYTES:
        raise ValueError(f"{path} does not hold a web data key")
    return material


def get_sealer(app: Flask | None = None) -> Sealer:
    application = app or current_app
    sealer = application.extensions.get(_EXTENSION_KEY)
    if sealer is None:
        material = _load_or_create(key_file(application))
        sealer = Sealer(
            Fernet(base64.urlsafe_b64encode(material[:KEY_BYTES])), material[KEY_BYTES:]
        )
        application.extensions[_EXTENSION_KEY] = sealer
    return sealer
