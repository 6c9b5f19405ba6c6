"""What a card signs: the contract's card assertion and the SD-JWT key-binding JWT.

Both are RS256 compact JWS made with the card's user-authentication key. Every backend
(a virtual card file, a PKCS#11 token) is a ``Card``: it signs raw bytes once the PIN
is right, so the JWS is put together here, once, for all of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.jws import b64url_encode
from holder import sd_jwt

ASSERTION_TYPE = "card-assertion+jwt"
#: The contract allows at most 300 s between ``iat`` and ``exp``.
ASSERTION_LIFETIME = 300


class Card(Protocol):
    """A card's user-authentication key and certificate, whatever holds them."""

    certificate: x509.Certificate
    #: The issuing CA(s) for ``x5c``, leaf excluded.
    chain: list[x509.Certificate]

    def sign(self, pin: str, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over ``data``; raises a ``CardError``."""
        ...


def x5c(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> list[str]:
    """The JWS ``x5c`` header: standard base64 DER, leaf first, then the chain."""
    return [
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        for cert in [certificate, *chain]
    ]


def compact_jws(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """``header.payload.signature`` with ``sign`` computing the signature bytes."""
    segments = [
        b64url_encode(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode())
        for part in ({**header, "alg": "RS256"}, claims)
    ]
    signing_input = ".".join(segments).encode("ascii")
    return ".".join([*segments, b64url_encode(sign(signing_input))])


def sign_assertion(
    card: Card,
    pin: str,
    *,
    nonce: str,
    audience: str,
    verifier: str | None = None,
    consent: Sequence[str] = (),
    now: datetime | None = None,
    lifetime: int = ASSERTION_LIFETIME,
) -> str:
    """The card assertion over ``aud``, ``nonce``, ``iat``, ``exp`` and, for the
    cross-device flow, ``verifier`` (who asked) and ``consent`` (only what the holder
    agreed to; left out when nothing was)."""
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
    header = {"typ": ASSERTION_TYPE, "x5c": x5c(card.certificate, card.chain)}
    return compact_jws(header, claims, lambda data: card.sign(pin, data))


def select_disclosures(credential: str, names: Iterable[str]) -> str:
    """The holder's choice: keep only the disclosures of ``names`` (no KB-JWT yet)."""
    wanted = set(names)
    parsed = sd_jwt.parse(credential)
    kept = tuple(d for d in parsed.disclosures if sd_jwt.parse_disclosure(d).name in wanted)
    return sd_jwt.Presentation(parsed.issuer_jwt, kept, None).sd_jwt


def present_credential(
    card: Card,
    pin: str,
    credential: str,
    *,
    disclose: Sequence[str],
    nonce: str,
    audience: str,
    now: datetime | None = None,
) -> str:
    """An SD-JWT VC presentation: the chosen disclosures and a key-binding JWT signed
    by the card the credential is bound to (``cnf``)."""
    chosen = select_disclosures(credential, disclose)
    claims = {
        "iat": int((now or datetime.now(UTC)).timestamp()),
        "aud": audience,
        "nonce": nonce,
        "sd_hash": sd_jwt.sd_hash(chosen),
    }
    return chosen + compact_jws({"typ": sd_jwt.KB_TYPE}, claims, lambda data: card.sign(pin, data))
