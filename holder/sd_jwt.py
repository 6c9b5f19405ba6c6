"""SD-JWT (RFC 9901) and SD-JWT VC (draft-ietf-oauth-sd-jwt-vc): issue and verify.

Issuance: the issuer-signed JWT (``typ`` ``dc+sd-jwt``, ES256 with the service's key)
carries the always-visible claims and, in ``_sd``, the SHA-256 digests of salted
Disclosures ``[salt, name, value]``; the SD-JWT is ``<jwt>~<d1>~...~<dn>~``.

Presentation: ``<jwt>~<chosen disclosures>~<kb-jwt>``. The Key Binding JWT (``typ``
``kb+jwt``, RS256) is signed by the card key in ``cnf.jwk`` and carries ``nonce``,
``aud``, ``iat`` and ``sd_hash`` (the digest of everything before it), so a credential
forwarded without the card, replayed to another audience, or stripped of or padded
with disclosures is rejected.

Verification follows RFC 9901 section 7: strict structure, issuer signature, every
disclosure referenced exactly once, no digest repeated, no claim overwritten, then the
Key Binding JWT. Signatures go through ``core.jws`` only; the digest is hashlib's
SHA-256 as the specification defines it. Exceptions carry a fixed ``reason`` and
never echo input.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from core import jws
from core.claims import ClaimsError, Problem, check_times, is_int64

SD_ALG = "sha-256"
VC_TYPE = "dc+sd-jwt"
KB_TYPE = "kb+jwt"
ISSUER_ALG = "ES256"
KB_ALG = "RS256"
MAX_LIFETIME_SECONDS = 24 * 3600
MAX_PRESENTATION_CHARS = 64 * 1024
MAX_DISCLOSURES = 64
MIN_RSA_BITS = 2048

# SD-JWT VC section 3.2.2: these never go into disclosures; "_sd"/"..." are reserved.
NEVER_DISCLOSED = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status", "_sd", "_sd_alg", "..."}
)
_KB_HEADER = frozenset({"alg", "typ"})
_RSA_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


class SdJwtError(Exception):
    """A presentation is not acceptable.

    ``reason`` is one of: ``malformed`` (structure or encoding), ``issuer_signature``,
    ``claims`` (issuer claims wrong or missing), ``expired``, ``disclosure``,
    ``key_binding_missing``, ``key_binding`` (bad KB-JWT or signature), ``nonce``,
    ``audience``, ``stale``. ``issuer_claims`` is set once the issuer signature has been
    verified, so callers can attribute a rejected attempt to its credential.
    """

    def __init__(self, reason: str, issuer_claims: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.issuer_claims = issuer_claims


# --- Disclosures ---------------------------------------------------------------------


def digest(encoded_disclosure: str) -> str:
    """base64url(SHA-256(US-ASCII(disclosure))) as RFC 9901 section 4.2.3 defines it."""
    return jws.b64url_encode(hashlib.sha256(encoded_disclosure.encode("ascii")).digest())


def new_salt() -> str:
    return jws.b64url_encode(secrets.token_bytes(16))  # 128 bits (section 9.3)


@dataclass(frozen=True)
class Disclosure:
    encoded: str
    salt: str
    name: str | None  # None for an array element disclosure
    value: Any

    @property
    def digest(self) -> str:
        return digest(self.encoded)


def make_disclosure(name: str, value: Any, salt: str | None = None) -> Disclosure:
    if name in NEVER_DISCLOSED:
        raise ValueError("claim may not be selectively disclosed")
    salt = salt or new_salt()
    raw = json.dumps([salt, name, value], ensure_ascii=False, separators=(",", ":"))
    return Disclosure(jws.b64url_encode(raw.encode("utf-8")), salt, name, value)


def parse_disclosure(encoded: str) -> Disclosure:
    """Strict: unpadded canonical base64url of a UTF-8 JSON array of 2 or 3 elements."""
    try:
        value = jws.strict_json(jws.b64url_decode(encoded))
    except jws.JwsError:
        raise SdJwtError("malformed") from None
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise SdJwtError("malformed")
    if not isinstance(value[0], str) or not value[0]:
        raise SdJwtError("malformed")
    if len(value) == 2:
        return Disclosure(encoded, value[0], None, value[1])
    if not isinstance(value[1], str):
        raise SdJwtError("malformed")
    if value[1] in ("_sd", "..."):
        raise SdJwtError("disclosure")
    return Disclosure(encoded, value[0], value[1], value[2])


# --- Keys ----------------------------------------------------------------------------


def rsa_public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    """The card's RSA public key as a JWK (RFC 7517/7518) for ``cnf.jwk``."""
    numbers = public_key.public_numbers()
    return {"kty": "RSA", "n": _uint_b64(numbers.n), "e": _uint_b64(numbers.e)}


def _uint_b64(value: int) -> str:
    return jws.b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def rsa_public_key_from_jwk(jwk: Any) -> rsa.RSAPublicKey:
    """Strict: a public RSA JWK of at least 2048 bits; private members are refused."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA":
        raise SdJwtError("claims")
    if _RSA_PRIVATE_MEMBERS & set(jwk):
        raise SdJwtError("claims")
    n_b64, e_b64 = jwk.get("n"), jwk.get("e")
    if not isinstance(n_b64, str) or not isinstance(e_b64, str):
        raise SdJwtError("claims")
    try:
        n = int.from_bytes(jws.b64url_decode(n_b64), "big")
        e = int.from_bytes(jws.b64url_decode(e_b64), "big")
        key = rsa.RSAPublicNumbers(e, n).public_key()
    except (jws.JwsError, ValueError):
        raise SdJwtError("claims") from None
    if key.key_size < MIN_RSA_BITS:
        raise SdJwtError("claims")
    return key


# --- Issuance --------------------------------------------------------------------------


def issue(
    claims: Mapping[str, Any],
    disclosable: Mapping[str, Any],
    *,
    private_key: Any,
    kid: str,
    decoys: int = 0,
) -> str:
    """An SD-JWT VC ``<jwt>~<d1>~...~<dn>~``: ``claims`` in clear, ``disclosable`` hidden.

    The ``_sd`` array is sorted so it does not reveal the claims' order (section 4.2.4.1);
    ``decoys`` random digests hide how many claims there are (section 4.2.5).
    """
    if set(claims) & set(disclosable) or set(claims) & {"_sd", "_sd_alg", "..."}:
        raise ValueError("claim names overlap or are reserved")
    for name in ("iss", "iat", "exp", "vct", "cnf"):
        if name not in claims:
            raise ValueError("missing required claim")
    if not 0 < claims["exp"] - claims["iat"] <= MAX_LIFETIME_SECONDS:
        raise ValueError("lifetime out of bounds")
    disclosures = [make_disclosure(name, value) for name, value in disclosable.items()]
    digests = [d.digest for d in disclosures]
    digests += [digest(new_salt()) for _ in range(decoys)]
    payload = dict(claims)
    payload["_sd"] = sorted(digests)
    payload["_sd_alg"] = SD_ALG
    token = jws.sign(payload, private_key, ISSUER_ALG, {"typ": VC_TYPE, "kid": kid})
    return token + "~" + "".join(d.encoded + "~" for d in disclosures)


# --- Parsing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Presentation:
    issuer_jwt: str
    disclosures: tuple[str, ...]
    key_binding_jwt: str | None

    @property
    def sd_jwt(self) -> str:
        """The part the KB-JWT's ``sd_hash`` covers: ``<jwt>~<d1>~...~<dn>~``."""
        return self.issuer_jwt + "~" + "".join(d + "~" for d in self.disclosures)


def parse(text: Any) -> Presentation:
    """Splits an SD-JWT or SD-JWT+KB; checks the shape only (section 4)."""
    if not isinstance(text, str) or not text or len(text) > MAX_PRESENTATION_CHARS:
        raise SdJwtError("malformed")
    if not text.isascii():
        raise SdJwtError("malformed")
    parts = text.split("~")
    if len(parts) < 2 or len(parts) - 2 > MAX_DISCLOSURES:
        raise SdJwtError("malformed")
    issuer_jwt, *disclosures, last = parts
    if not issuer_jwt or any(not d for d in disclosures):
        raise SdJwtError("malformed")
    return Presentation(issuer_jwt, tuple(disclosures), last or None)


def sd_hash(sd_jwt: str) -> str:
    return digest(sd_jwt)


# --- Verification ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReference:
    idx: int
    uri: str


@dataclass(frozen=True)
class VerifiedPresentation:
    issuer_claims: dict[str, Any]  # as signed, with _sd digests
    claims: dict[str, Any]  # processed: disclosed claims in, _sd/_sd_alg out
    disclosed: dict[str, Any]  # only the selectively disclosed claims
    holder_key: rsa.RSAPublicKey
    status: StatusReference
    key_binding_claims: dict[str, Any] = field(default_factory=dict)


def verify_presentation(
    presentation: Any,
    *,
    issuer_key_for_kid: Callable[[str], Any | None],
    expected_issuer: str,
    expected_vct: str,
    nonce: str,
    audience: str,
    now: int,
    leeway: int = 60,
    max_key_binding_age: int = 300,
) -> VerifiedPresentation:
    """Verifies an SD-JWT VC presentation with key binding; raises ``SdJwtError``."""
    parsed = parse(presentation)
    issuer_claims = _verify_issuer_jwt(parsed.issuer_jwt, issuer_key_for_kid)
    try:
        return _verify_rest(
            parsed,
            issuer_claims,
            expected_issuer=expected_issuer,
            expected_vct=expected_vct,
            nonce=nonce,
            audience=audience,
            now=now,
            leeway=leeway,
            max_key_binding_age=max_key_binding_age,
        )
    except SdJwtError as error:
        raise SdJwtError(error.reason, issuer_claims) from None


def _verify_issuer_jwt(token: str, issuer_key_for_kid: Callable[[str], Any | None]) -> dict:
    try:
        parsed = jws.verify_key_id_signed(
            token, typ=VC_TYPE, algorithm=ISSUER_ALG, key_for_kid=issuer_key_for_kid
        )
    except jws.MalformedJws:
        raise SdJwtError("malformed") from None
    except jws.JwsError:
        raise SdJwtError("issuer_signature") from None
    return parsed.payload


def _verify_rest(
    parsed: Presentation,
    issuer_claims: dict[str, Any],
    *,
    expected_issuer: str,
    expected_vct: str,
    nonce: str,
    audience: str,
    now: int,
    leeway: int,
    max_key_binding_age: int,
) -> VerifiedPresentation:
    if issuer_claims.get("iss") != expected_issuer or issuer_claims.get("vct") != expected_vct:
        raise SdJwtError("claims")
    if issuer_claims.get("_sd_alg") != SD_ALG:
        raise SdJwtError("claims")
    try:
        check_times(issuer_claims, now=now, leeway=leeway, max_lifetime=MAX_LIFETIME_SECONDS)
    except ClaimsError as error:
        raise SdJwtError("expired" if error.problem is Problem.EXPIRED else "claims") from None
    cnf = issuer_claims.get("cnf")
    if not isinstance(cnf, Mapping) or set(cnf) != {"jwk"}:
        raise SdJwtError("claims")
    holder_key = rsa_public_key_from_jwk(cnf["jwk"])
    status = _status_reference(issuer_claims.get("status"))

    claims, disclosed = process_disclosures(issuer_claims, parsed.disclosures)
    kb_claims = _verify_key_binding(
        parsed,
        holder_key,
        nonce=nonce,
        audience=audience,
        now=now,
        leeway=leeway,
        max_age=max_key_binding_age,
    )
    return VerifiedPresentation(issuer_claims, claims, disclosed, holder_key, status, kb_claims)


def _status_reference(status: Any) -> StatusReference:
    if not isinstance(status, Mapping) or not isinstance(status.get("status_list"), Mapping):
        raise SdJwtError("claims")
    ref = status["status_list"]
    idx, uri = ref.get("idx"), ref.get("uri")
    if not is_int64(idx) or idx < 0 or not isinstance(uri, str) or not uri:
        raise SdJwtError("claims")
    return StatusReference(idx, uri)


def process_disclosures(
    issuer_claims: Mapping[str, Any], encoded: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """RFC 9901 section 7.1 steps 3-5, recursive over objects and arrays.

    Returns the processed payload and the top-level disclosed claims.
    """
    by_digest: dict[str, Disclosure] = {}
    for item in encoded:
        disclosure = parse_disclosure(item)
        if disclosure.digest in by_digest:
            raise SdJwtError("disclosure")  # the same disclosure twice
        by_digest[disclosure.digest] = disclosure
    seen: set[str] = set()
    used: set[str] = set()
    disclosed: dict[str, Any] = {}

    def take(value: str) -> Disclosure | None:
        if not isinstance(value, str):
            raise SdJwtError("malformed")
        if value in seen:
            raise SdJwtError("disclosure")  # a digest may appear only once
        seen.add(value)
        found = by_digest.get(value)
        if found is not None:
            used.add(value)
        return found

    def walk(node: Any, top: bool = False) -> Any:
        if isinstance(node, dict):
            result: dict[str, Any] = {}
            for key, value in node.items():
                if key == "_sd" or (key == "_sd_alg" and top):
                    continue
                if key == "...":
                    raise SdJwtError("malformed")
                result[key] = walk(value)
            sd = node.get("_sd", [])
            if not isinstance(sd, list):
                raise SdJwtError("malformed")
            for value in sd:
                found = take(value)
                if found is None:
                    continue  # undisclosed or decoy
                if found.name is None or found.name in result:
                    raise SdJwtError("disclosure")
                result[found.name] = walk(found.value)
                if top:
                    disclosed[found.name] = result[found.name]
            return result
        if isinstance(node, list):
            items = []
            for element in node:
                if isinstance(element, dict) and "..." in element:
                    if len(element) != 1:
                        raise SdJwtError("malformed")
                    found = take(element["..."])
                    if found is None:
                        continue
                    if found.name is not None:
                        raise SdJwtError("disclosure")
                    items.append(walk(found.value))
                else:
                    items.append(walk(element))
            return items
        return node

    claims = walk(dict(issuer_claims), top=True)
    if used != set(by_digest):
        raise SdJwtError("disclosure")  # a disclosure that the issuer did not sign
    return claims, disclosed


def _verify_key_binding(
    parsed: Presentation,
    holder_key: rsa.RSAPublicKey,
    *,
    nonce: str,
    audience: str,
    now: int,
    leeway: int,
    max_age: int,
) -> dict[str, Any]:
    if parsed.key_binding_jwt is None:
        raise SdJwtError("key_binding_missing")
    try:
        kb = jws.parse_compact(parsed.key_binding_jwt)
    except jws.JwsError:
        raise SdJwtError("key_binding") from None
    if set(kb.header) - _KB_HEADER or kb.header.get("typ") != KB_TYPE:
        raise SdJwtError("key_binding")
    if kb.header.get("alg") != KB_ALG:
        raise SdJwtError("key_binding")
    try:
        jws.verify_parsed(kb, holder_key, KB_ALG)
    except jws.JwsError:
        raise SdJwtError("key_binding") from None
    claims = kb.payload
    if not isinstance(claims.get("sd_hash"), str) or not _equal(
        claims["sd_hash"], sd_hash(parsed.sd_jwt)
    ):
        raise SdJwtError("key_binding")
    if not isinstance(claims.get("nonce"), str) or not _equal(claims["nonce"], nonce):
        raise SdJwtError("nonce")
    if not isinstance(claims.get("aud"), str) or not _equal(claims["aud"], audience):
        raise SdJwtError("audience")
    try:
        check_times(claims, now=now, leeway=leeway, max_age=max_age, require_exp=False)
    except ClaimsError as error:
        stale = error.problem in (Problem.TOO_OLD, Problem.EXPIRED)
        raise SdJwtError("stale" if stale else "key_binding") from None
    return claims


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
