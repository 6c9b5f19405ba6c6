"""Virtual My Number cards: a JSON file standing in for the card's IC chip.

The file holds the user-authentication certificate, its chain, and the private key
(PKCS#8 DER) encrypted with AES-256-GCM under a key derived from the 4-digit PIN with
scrypt; the certificate is the GCM associated data, so a key cannot be moved to another
card file. A retry counter in the file locks the card after 3 consecutive wrong PINs;
a correct PIN resets it. A real card enforces the counter in hardware; a file can be
copied, so this is a stand-in for demos and tests, not a security boundary.

``sign_assertion`` produces the contract's card assertion: a compact RS256 JWS with
``typ`` ``card-assertion+jwt`` and ``x5c`` (leaf first, standard base64 DER).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core import jws
from core.files import write_atomic
from seed.card_authority import CardAuthority, file_lock, generate_card_key

FORMAT = "virtual-card/1"
MAX_PIN_ATTEMPTS = 3
ASSERTION_TYPE = "card-assertion+jwt"
#: scrypt cost (N); r=8, p=1. About 40 ms per PIN check on a laptop.
DEFAULT_SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_PIN = re.compile(r"^[0-9]{4}$")


class CardError(Exception):
    """Base class; messages are fixed text meant for the card holder."""


class InvalidPinFormat(CardError, ValueError):
    def __init__(self) -> None:
        super().__init__("The PIN is 4 digits. Nothing was counted against the card.")


class WrongPin(CardError):
    def __init__(self, remaining_attempts: int) -> None:
        self.remaining_attempts = remaining_attempts
        plural = "s" if remaining_attempts != 1 else ""
        super().__init__(
            f"Wrong PIN: {remaining_attempts} attempt{plural} left before the card locks."
        )


class CardLocked(CardError):
    def __init__(self) -> None:
        super().__init__(
            f"The card is locked after {MAX_PIN_ATTEMPTS} consecutive wrong PINs and cannot "
            "sign. A locked card must be reset at the municipal office "
            "(in this demo: re-issue the card)."
        )


class CardFileInvalid(CardError):
    def __init__(self) -> None:
        super().__init__("This file is not a readable virtual card.")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _derive(pin: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(pin.encode("ascii"))


def _check_pin_format(pin: str) -> None:
    if not isinstance(pin, str) or not _PIN.match(pin):
        raise InvalidPinFormat()


@dataclass
class VirtualCard:
    path: Path
    certificate: x509.Certificate
    chain: list[x509.Certificate]
    holder_name: str | None = None

    # -- files --

    @classmethod
    def create(
        cls,
        path: Path,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        pin: str,
        *,
        holder_name: str | None = None,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> VirtualCard:
        """Writes a new card file (mode 0600). ``chain``: the issuing CA(s), leaf excluded.

        ``holder_name`` is only a label for demos; it never enters the certificate.
        """
        _check_pin_format(pin)
        if private_key.public_key() != certificate.public_key():
            raise ValueError("the private key does not match the certificate")
        path = Path(path)
        cert_der = certificate.public_bytes(serialization.Encoding.DER)
        salt, nonce = os.urandom(16), os.urandom(12)
        key_der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        ciphertext = AESGCM(_derive(pin, salt, scrypt_n)).encrypt(
            nonce, key_der, _associated_data(cert_der)
        )
        document = {
            "format": FORMAT,
            "holder_name": holder_name,
            "certificate": certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "chain": [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain],
            "key": {
                "kdf": "scrypt",
                "n": scrypt_n,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
                "salt": _b64(salt),
                "cipher": "AES-256-GCM",
                "nonce": _b64(nonce),
                "ciphertext": _b64(ciphertext),
            },
            "pin": {"failed_attempts": 0, "max_attempts": MAX_PIN_ATTEMPTS},
        }
        _write(path, document)
        return cls(path, certificate, list(chain), holder_name)

    @classmethod
    def load(cls, path: Path) -> VirtualCard:
        path = Path(path)
        document = _read(path)
        try:
            certificate = x509.load_pem_x509_certificate(document["certificate"].encode())
            chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in document["chain"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CardFileInvalid() from None
        return cls(path, certificate, chain, document.get("holder_name"))

    # -- state --

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def failed_attempts(self) -> int:
        return int(_read(self.path)["pin"]["failed_attempts"])

    @property
    def remaining_attempts(self) -> int:
        return max(0, MAX_PIN_ATTEMPTS - self.failed_attempts)

    @property
    def locked(self) -> bool:
        return self.failed_attempts >= MAX_PIN_ATTEMPTS

    def x5c(self) -> list[str]:
        """The JWS ``x5c`` header: standard base64 DER, leaf first, then the chain."""
        return [
            _b64(cert.public_bytes(serialization.Encoding.DER))
            for cert in [self.certificate, *self.chain]
        ]

    # -- the chip's operations --

    def unlock(self, pin: str) -> rsa.RSAPrivateKey:
        """Checks the PIN against the retry counter and returns the private key.

        Raises ``CardLocked`` (also on the wrong PIN that locks the card), ``WrongPin``
        with the attempts left, or ``InvalidPinFormat`` (not counted, as a reader would
        refuse to send it to the chip).
        """
        _check_pin_format(pin)
        with file_lock(self._lock_path):
            document = _read(self.path)
            counter = document["pin"]
            if counter["failed_attempts"] >= MAX_PIN_ATTEMPTS:
                raise CardLocked()
            key_info = document["key"]
            cert_der = self.certificate.public_bytes(serialization.Encoding.DER)
            try:
                key_der = AESGCM(
                    _derive(pin, _unb64(key_info["salt"]), int(key_info["n"]))
                ).decrypt(
                    _unb64(key_info["nonce"]),
                    _unb64(key_info["ciphertext"]),
                    _associated_data(cert_der),
                )
            except InvalidTag:
                counter["failed_attempts"] += 1
                _write(self.path, document)
                remaining = MAX_PIN_ATTEMPTS - counter["failed_attempts"]
                if remaining <= 0:
                    raise CardLocked() from None
                raise WrongPin(remaining) from None
            if counter["failed_attempts"]:
                counter["failed_attempts"] = 0
                _write(self.path, document)
        key = serialization.load_der_private_key(key_der, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CardFileInvalid()
        return key

    def sign_assertion(
        self,
        pin: str,
        *,
        nonce: str,
        audience: str,
        now: datetime | None = None,
        lifetime: int = 300,
        verifier: str | None = None,
        consent: Sequence[str] = (),
    ) -> str:
        """The contract's card assertion: RS256 compact JWS over aud, nonce, iat, exp and,
        when given, the ``verifier`` asking and the ``consent`` the holder agreed to."""
        key = self.unlock(pin)
        issued_at = int((now or datetime.now(UTC)).timestamp())
        claims: dict[str, Any] = {
            "aud": audience,
            "nonce": nonce,
            "iat": issued_at,
            "exp": issued_at + lifetime,
        }
        if verifier is not None:
            claims["verifier"] = verifier
        if consent:
            claims["consent"] = list(consent)
        headers = {"typ": ASSERTION_TYPE, "x5c": self.x5c()}
        return jws.sign(claims, key, "RS256", headers=headers)

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")


def issue_virtual_card(
    authority: CardAuthority,
    path: Path | Callable[[int], Path],
    pin: str,
    *,
    register: Callable[[x509.Certificate], None] | None = None,
    holder_name: str | None = None,
    private_key: rsa.RSAPrivateKey | None = None,
    now: datetime | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> VirtualCard:
    """New key (unless given), card certificate and card file, in that order.

    ``path`` may be a function of the serial. ``register(certificate)`` runs before the
    card file is written, typically
    ``lambda cert: get_identity_platform().register_certificate(cert, my_number)``;
    if it raises, the certificate is revoked (cessationOfOperation) and no file is
    written. For many cards, wrap the calls in ``authority.batch()``.
    """
    _check_pin_format(pin)
    key = private_key or generate_card_key()
    certificate = authority.issue_card_certificate(key.public_key(), now=now)
    if register is not None:
        try:
            register(certificate)
        except BaseException:
            authority.revoke(
                certificate.serial_number, x509.ReasonFlags.cessation_of_operation, now=now
            )
            raise
    target = Path(path(certificate.serial_number) if callable(path) else path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return VirtualCard.create(
        target, key, certificate, authority.chain, pin, holder_name=holder_name, scrypt_n=scrypt_n
    )


def _associated_data(cert_der: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert_der)
    return FORMAT.encode("ascii") + b"\x00" + digest.finalize()


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise CardFileInvalid() from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CardFileInvalid()
    return document


def _write(path: Path, document: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(document, indent=1).encode("utf-8"), mode=0o600)
