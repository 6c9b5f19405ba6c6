"""The only module that touches python-jose.

Every call names its algorithms explicitly and passes key *objects* (never PEM/DER
bytes, which python-jose 3.5.0 would accept as an HMAC secret if HS256 were allowed).
python-jose ignores ``crit`` and does not police header members, so ``parse_compact``
does the strict structural checks first: exactly three parts, unpadded base64url, JSON
objects without duplicate members. Backstop tests in tests/core/test_jws.py pin the
library behaviour this relies on.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from jose import jwk
from jose import jws as jose_jws
from jose.exceptions import JOSEError

from core.strict_json import InvalidJson
from core.strict_json import loads as strict_json_loads

Algorithm = Literal["RS256", "ES256"]
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
KEY_ID_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})


class JwsError(Exception):
    """Structure, encoding or signature is not acceptable. Messages are fixed text."""


class MalformedJws(JwsError):
    """Not a compact JWS of strict base64url JSON objects (``verify_key_id_signed``)."""


@dataclass(frozen=True)
class CompactJws:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_decode(segment: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 section 2): no padding, no other alphabet."""
    if not _BASE64URL.match(segment) or len(segment) % 4 == 1:
        raise JwsError("segment is not unpadded base64url")
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise JwsError("segment is not unpadded base64url") from None
    # Reject non-canonical encodings (stray bits in the last character).
    if b64url_encode(decoded) != segment:
        raise JwsError("segment is not canonical base64url")
    return decoded


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def strict_json(data: bytes) -> Any:
    """UTF-8 JSON with unique member names, no NaN/Infinity (RFC 7515 section 4),
    integers within 64 bits and bounded nesting (``core.strict_json``)."""
    try:
        return strict_json_loads(data)
    except InvalidJson:
        raise JwsError("not strict JSON") from None


def strict_json_object(data: bytes) -> dict[str, Any]:
    try:
        value = strict_json(data)
    except JwsError:
        raise JwsError("segment is not a JSON object") from None
    if not isinstance(value, dict):
        raise JwsError("segment is not a JSON object")
    return value


def parse_compact(token: str, *, max_header_bytes: int | None = None) -> CompactJws:
    """Structural parse of a compact JWS; verifies nothing cryptographic."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]) or not parts[2]:
        raise JwsError("not a compact JWS")
    if max_header_bytes is not None and len(parts[0]) > max_header_bytes * 4 // 3 + 4:
        raise JwsError("header too large")
    header = strict_json_object(b64url_decode(parts[0]))
    payload = strict_json_object(b64url_decode(parts[1]))
    signature = b64url_decode(parts[2])
    return CompactJws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def sign(
    claims: dict[str, Any], private_key: Any, algorithm: Algorithm, headers: dict[str, Any]
) -> str:
    """Compact JWS over canonical JSON claims with a cryptography private key object."""
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError("unsupported algorithm")
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    key = jwk.construct(private_key, algorithm)
    return jose_jws.sign(payload.encode("utf-8"), key, headers=headers, algorithm=algorithm)


def verify_parsed(parsed: CompactJws, public_key: Any, algorithm: Algorithm) -> None:
    """Checks the signature of an already parsed token with one public key object.

    The header's ``alg`` must be ``algorithm`` (the caller's allow-list of one) and the
    key type must match it; nothing is parsed again.
    """
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError("unsupported algorithm")
    if parsed.header.get("alg") != algorithm:
        raise JwsError("signature verification failed")
    try:
        key = jwk.construct(public_key, algorithm)
        valid = key.verify(parsed.signing_input, parsed.signature)
    except (JOSEError, ValueError, TypeError):
        raise JwsError("signature verification failed") from None
    if not valid:
        raise JwsError("signature verification failed")


#: The key type (and curve) a JWK must have for each algorithm we use.
_JWK_SHAPE: dict[str, dict[str, str]] = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA"},
}
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def public_jwk(public_key: Any, algorithm: Algorithm) -> dict[str, str]:
    """The public JWK (RFC 7517/7518) of a cryptography public key, written by python-jose:
    ``kty`` and the key's members (``crv``, ``x``, ``y`` or ``n``, ``e``), no ``alg``."""
    members = jwk.construct(public_key, algorithm).public_key().to_dict()
    members.pop("alg", None)
    return members


def public_key_from_jwk(members: Any, algorithm: Algorithm) -> Any:
    """The cryptography public key of a public JWK for ``algorithm``; ``JwsError`` for a
    wrong key type or curve, private members, or values that are not a valid key."""
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError("unsupported algorithm")
    if not isinstance(members, dict) or _PRIVATE_JWK_MEMBERS & set(members):
        raise JwsError("not a public JWK")
    if any(members.get(name) != value for name, value in _JWK_SHAPE[algorithm].items()):
        raise JwsError("not a JWK for this algorithm")
    try:
        return jwk.construct(members, algorithm).prepared_key
    except (JOSEError, ValueError, TypeError, KeyError):
        raise JwsError("not a valid public JWK") from None


def verify_key_id_signed(
    token: str,
    *,
    typ: str,
    algorithm: Algorithm,
    key_for_kid: Callable[[str], Any | None],
) -> CompactJws:
    """A JWS whose header holds only ``alg``, ``typ`` and ``kid``, with exactly this
    ``typ`` and ``algorithm``, signed by the public key ``key_for_kid`` returns for its
    ``kid`` (receipts, sessions, credentials, status lists).

    Raises ``MalformedJws`` for the structure, ``JwsError`` ("unexpected header",
    "unknown key" or a bad signature) for the rest.
    """
    try:
        parsed = parse_compact(token)
    except JwsError:
        raise MalformedJws("not a compact JWS") from None
    header = parsed.header
    if (
        set(header) - KEY_ID_HEADER_MEMBERS
        or header.get("alg") != algorithm
        or header.get("typ") != typ
    ):
        raise JwsError("unexpected header")
    kid = header.get("kid")
    public_key = key_for_kid(kid) if isinstance(kid, str) else None
    if public_key is None:
        raise JwsError("unknown key")
    verify_parsed(parsed, public_key, algorithm)
    return parsed
