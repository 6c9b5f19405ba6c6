#!/usr/bin/env python3
"""Verify a licence credential presentation offline, the way a third party would.

Needs only the service's JWKS and the Token Status List the credential points at,
and a maintained JOSE library (joserfc, https://jose.authlib.org) -- none of the
service's own code. It checks, in this order:

1. The presentation's shape: ``<issuer-jwt>~<disclosure>~...~<kb-jwt>`` (RFC 9901).
2. The issuer-signed JWT: ``typ`` ``dc+sd-jwt``, ES256 with a key of the JWKS
   (picked by ``kid``), the expected ``iss`` and ``vct``, not expired.
3. Every disclosure: its SHA-256 digest is in ``_sd``, none is repeated, none
   overwrites a claim in clear.
4. The key-binding JWT: ``typ`` ``kb+jwt``, RS256 with the card key in ``cnf.jwk``,
   your ``nonce`` and ``aud``, a fresh ``iat``, and ``sd_hash`` over the presentation.
5. The status: the Status List Token (``typ`` ``statuslist+jwt``, signed with a key of
   the JWKS, ``sub`` equal to the credential's ``status.status_list.uri``, not
   expired), inflated (ZLIB) and read at ``idx`` (2 bits: 0 valid, 1 invalid,
   2 suspended).

Usage::

    python examples/verify_credential.py --presentation presentation.txt \\
        --jwks jwks.json --status-list status-list.jwt \\
        --nonce NONCE --audience https://your-platform.example \\
        [--issuer urn:licence-verification:local]

``--jwks`` and ``--status-list`` take a file or an http(s) URL; without
``--status-list`` the list is fetched from the URI in the credential. Prints the
result as JSON. Exit status: 0 verified and valid, 1 rejected, 2 verified but the
status is invalid (revoked) or suspended.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

VCT = "urn:licence-verification:vct:professional-licence:1"
DEFAULT_ISSUER = "urn:licence-verification:local"
STATUS_NAMES = {0: "valid", 1: "invalid", 2: "suspended", 3: "application-specific"}
LEEWAY = 60  # seconds of clock skew tolerated
KEY_BINDING_MAX_AGE = 300  # seconds: how old a key-binding JWT may be
MAX_LIFETIME = 24 * 3600
MAX_STATUS_LIST_BYTES = 16 * 1024 * 1024


class Rejected(Exception):
    """The presentation must not be accepted; the message says why."""


def b64url_decode(text: str) -> bytes:
    if "=" in text:
        raise Rejected("padded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_sha256(text: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(text.encode("ascii")).digest())
        .rstrip(b"=")
        .decode()
    )


def load(source: str) -> bytes:
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - http(s) only
            return response.read(MAX_STATUS_LIST_BYTES)
    return Path(source).read_bytes()


def verify_jws(token: str, key: Any, algorithm: str, typ: str) -> dict[str, Any]:
    """Signature with ``key`` (a key or a key set), exact ``alg`` and ``typ``; the claims."""
    try:
        signature = jws.deserialize_compact(token, key, algorithms=[algorithm])
    except (JoseError, ValueError) as error:
        raise Rejected(f"{typ}: signature does not verify ({type(error).__name__})") from None
    header = signature.headers()
    if header.get("typ") != typ or header.get("alg") != algorithm:
        raise Rejected(f"{typ}: unexpected header")
    if "crit" in header or "jku" in header or "jwk" in header or "x5u" in header:
        raise Rejected(f"{typ}: header members that are not allowed")
    claims = json.loads(signature.payload)
    if not isinstance(claims, dict):
        raise Rejected(f"{typ}: payload is not a JSON object")
    return claims


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def process_disclosures(payload: dict[str, Any], disclosures: list[str]) -> dict[str, Any]:
    """Top-level object-property disclosures (all this credential type uses)."""
    digests = payload.get("_sd", [])
    if not isinstance(digests, list) or len(set(digests)) != len(digests):
        raise Rejected("_sd is not a list of distinct digests")
    disclosed: dict[str, Any] = {}
    seen: set[str] = set()
    for disclosure in disclosures:
        digest = b64url_sha256(disclosure)
        if digest in seen:
            raise Rejected("a disclosure is repeated")
        seen.add(digest)
        if digest not in digests:
            raise Rejected("a disclosure is not in _sd")
        try:
            salt, name, value = json.loads(b64url_decode(disclosure))
        except (ValueError, TypeError):
            raise Rejected("a disclosure is malformed") from None
        if not isinstance(salt, str) or not isinstance(name, str) or name in ("_sd", "..."):
            raise Rejected("a disclosure is malformed")
        if name in payload or name in disclosed:
            raise Rejected("a disclosure overwrites a claim")
        disclosed[name] = value
    return disclosed


def verify_presentation(
    presentation: str,
    *,
    jwks: dict[str, Any],
    nonce: str,
    audience: str,
    issuer: str,
    now: int,
) -> dict[str, Any]:
    keys = KeySet.import_key_set(jwks)
    parts = presentation.strip().split("~")
    if len(parts) < 2 or not parts[0] or any(not d for d in parts[1:-1]):
        raise Rejected("not an SD-JWT presentation")
    issuer_jwt, disclosures, kb_jwt = parts[0], parts[1:-1], parts[-1]

    payload = verify_jws(issuer_jwt, keys, "ES256", "dc+sd-jwt")
    if payload.get("iss") != issuer or payload.get("vct") != VCT:
        raise Rejected("credential from another issuer or of another type")
    if payload.get("_sd_alg") != "sha-256":
        raise Rejected("unsupported _sd_alg")
    iat, exp = payload.get("iat"), payload.get("exp")
    if not is_int(iat) or not is_int(exp) or not 0 < exp - iat <= MAX_LIFETIME:
        raise Rejected("bad iat/exp")
    if iat > now + LEEWAY:
        raise Rejected("credential issued in the future")
    if exp <= now - LEEWAY:
        raise Rejected("credential expired")

    disclosed = process_disclosures(payload, disclosures)

    if not kb_jwt:
        raise Rejected("no key-binding JWT: the credential was not presented with its card")
    card_key = RSAKey.import_key(payload["cnf"]["jwk"])
    kb = verify_jws(kb_jwt, card_key, "RS256", "kb+jwt")
    sd_jwt = presentation.strip()[: -len(kb_jwt)]
    if not isinstance(kb.get("sd_hash"), str) or not hmac.compare_digest(
        kb["sd_hash"], b64url_sha256(sd_jwt)
    ):
        raise Rejected("key-binding JWT does not cover this presentation")
    if not isinstance(kb.get("nonce"), str) or not hmac.compare_digest(kb["nonce"], nonce):
        raise Rejected("key-binding JWT for another nonce")
    if kb.get("aud") != audience:
        raise Rejected("key-binding JWT for another audience")
    if (
        not is_int(kb.get("iat"))
        or not now - KEY_BINDING_MAX_AGE - LEEWAY <= kb["iat"] <= now + LEEWAY
    ):
        raise Rejected("key-binding JWT is not fresh")

    claims = {k: v for k, v in payload.items() if k not in ("_sd", "_sd_alg")}
    claims.update(disclosed)
    return {"claims": claims, "disclosed": sorted(disclosed)}


def read_status(status_token: str, *, jwks: dict[str, Any], uri: str, idx: int, now: int) -> int:
    claims = verify_jws(status_token, KeySet.import_key_set(jwks), "ES256", "statuslist+jwt")
    if claims.get("sub") != uri:
        raise Rejected("the status list is not the one the credential refers to")
    if not is_int(claims.get("iat")) or claims["iat"] > now + LEEWAY:
        raise Rejected("status list issued in the future")
    if "exp" in claims and (not is_int(claims["exp"]) or claims["exp"] <= now - LEEWAY):
        raise Rejected("status list expired: fetch a fresh one")
    status_list = claims.get("status_list") or {}
    bits = status_list.get("bits")
    if bits not in (1, 2, 4, 8) or not isinstance(status_list.get("lst"), str):
        raise Rejected("malformed status list")
    inflater = zlib.decompressobj()
    data = inflater.decompress(b64url_decode(status_list["lst"]), MAX_STATUS_LIST_BYTES)
    if not is_int(idx) or idx < 0 or (idx + 1) * bits > len(data) * 8:
        raise Rejected("status index outside the list")
    byte, shift = divmod(idx * bits, 8)
    return (data[byte] >> shift) & ((1 << bits) - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presentation", required=True, help="file with the presentation, or -")
    parser.add_argument("--jwks", required=True, help="the service's JWKS: file or URL")
    parser.add_argument("--status-list", help="the Status List Token: file or URL")
    parser.add_argument("--nonce", required=True, help="the nonce you gave the holder")
    parser.add_argument("--audience", required=True, help="your audience identifier")
    parser.add_argument("--issuer", default=DEFAULT_ISSUER, help="the service's identifier")
    parser.add_argument("--now", type=int, help="verification time (epoch seconds)")
    args = parser.parse_args(argv)

    now = args.now if args.now is not None else int(time.time())
    if args.presentation == "-":
        presentation = sys.stdin.read()
    else:
        presentation = Path(args.presentation).read_text()
    try:
        jwks = json.loads(load(args.jwks))
        result = verify_presentation(
            presentation,
            jwks=jwks,
            nonce=args.nonce,
            audience=args.audience,
            issuer=args.issuer,
            now=now,
        )
        ref = result["claims"]["status"]["status_list"]
        status_token = load(args.status_list or ref["uri"]).decode("ascii").strip()
        status = read_status(status_token, jwks=jwks, uri=ref["uri"], idx=ref["idx"], now=now)
    except (Rejected, KeyError, TypeError, ValueError, OSError) as error:
        print(json.dumps({"verified": False, "error": str(error) or type(error).__name__}))
        return 1
    output = {
        "verified": True,
        "status": STATUS_NAMES[status],
        "profession": result["claims"].get("profession"),
        "disclosed": {name: result["claims"][name] for name in result["disclosed"]},
        "expires_at": result["claims"]["exp"],
    }
    print(json.dumps(output, ensure_ascii=False))
    return 0 if status == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
