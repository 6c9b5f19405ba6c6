"""The card-assertion verification pipeline, numbered as in the architecture.

 0. Size limits before parsing (body, header, x5c count)         -> 413 payload_too_large
 1. Strict compact JWS parse; typ; only alg/typ/x5c/kid in header -> 400 / 401 invalid_assertion
 2. alg allow-list: RS256 only                                    -> 401 invalid_assertion
 3. x5c chain to the card trust anchors, card profile, key size   -> 401 untrusted_certificate
 4. Revocation against the issuer's newest CRL                    -> 403 card_* / 503
 5. Signature with the validated leaf's key only                  -> 401 invalid_assertion
 6. Claims: aud, iat/exp bounds, nonce present                    -> 401 invalid_assertion
 7. Nonce: consumed by one conditional UPDATE (issued to this    -> 401 invalid_nonce
    caller, unused, unexpired)
 8. Identity platform: certificate -> licensing code -> licences
 9. Outcome for the asked profession; verifier's pairwise code; receipt; access record

Steps 0-6 are ``check_card_assertion`` and steps 0-7 ``verify_card_assertion``, shared
by every flow that accepts a card assertion; the holder sign-in flow consumes a public
holder challenge at step 7. The verifier flow (``run_verifier_flow``) runs steps 0-6,
then step 8, then step 7, then step 9, in one transaction: the challenge's profession is
known only from the consuming UPDATE, so step 8 reads the holder's licences of every
profession (one indexed query, usually one row) and step 9 keeps the asked one only.
Why step 7 comes after the lookups: on SQLite the first write takes the database's write
lock until COMMIT, and consuming first held it through the identity platform and the
licence lookup, serialising every verification behind them. Consuming there also spares
a separate read of the challenge (one database round trip less on PostgreSQL). If the
nonce is not consumable (replayed, expired, another verifier's, or consumed by a
concurrent submission) the UPDATE matches no row: 401 invalid_nonce, rolled back,
nothing written.

Failures raise ``verification.errors`` classes. From step 4 on the chain has
validated, and the error carries the card certificate (``error.leaf``) and the nonce
claim (``error.nonce``), so the caller can tell the card's holder about the attempt.

Everything happens in the caller's session; steps 0-6 and 8 only read, and the nonce
UPDATE is the transaction's first write, so on SQLite the write lock is taken by it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, current_app
from sqlalchemy import insert
from sqlalchemy.orm import Session

from core import jws
from core.db import utcnow
from core.signing import get_keyring
from verification.challenges import (
    MAX_NONCE_LENGTH,
    ChallengePurpose,
    ConsumedChallenge,
    consume_nonce,
    peek_profession,
)
from verification.errors import (
    InvalidAssertion,
    InvalidNonce,
    InvalidRequest,
    PayloadTooLarge,
    UntrustedCertificate,
    VerificationError,
)
from verification.models import AccessRecord
from verification.revocation import check_chain
from verification.trust import MALFORMED, get_trust_anchors

log = logging.getLogger("licence_service.verification")

ASSERTION_TYPE = "card-assertion+jwt"
RECEIPT_TYPE = "verification-receipt+jwt"
ALLOWED_ALGORITHMS: tuple[jws.Algorithm, ...] = ("RS256",)
ALLOWED_HEADER_MEMBERS = frozenset({"alg", "typ", "x5c", "kid"})
MAX_TOKEN_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_X5C_ENTRIES = 4
CLOCK_LEEWAY_SECONDS = 60
# An empty signature (alg "none") has the structure; it fails in step 1 as content.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
MAX_LIFETIME_SECONDS = 300

#: (session, nonce claim, now) -> the consumed challenge, or None if not consumable.
NonceConsumer = Callable[[Session, str, datetime], ConsumedChallenge | None]


@dataclass(frozen=True)
class CardAssertion:
    """A card assertion that passed steps 0-6: its chain validated, not revoked, signed
    by the card, claims within bounds. Its nonce is not consumed yet."""

    chain: list[x509.Certificate]  # leaf first, trust anchor last
    claims: dict[str, Any]
    nonce: str
    verified_at: datetime

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def card_key(self) -> rsa.RSAPublicKey:
        key = self.leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):  # step 3 rejects such a leaf already
            raise UntrustedCertificate()
        return key

    def rejection(self, error: VerificationError) -> VerificationError:
        """``error``, naming this card and nonce so its holder can be told of the attempt."""
        error.leaf = self.leaf
        error.nonce = self.nonce
        return error


@dataclass(frozen=True)
class VerifiedAssertion(CardAssertion):
    """A card assertion that passed steps 0-7: its nonce consumed (not committed)."""

    challenge: ConsumedChallenge


# --- steps 0-7 ------------------------------------------------------------------------


def step0_size_limits(token: str) -> None:
    if len(token) > MAX_TOKEN_BYTES:
        raise PayloadTooLarge()
    header_segment = token.split(".", 1)[0]
    if len(header_segment) > (MAX_HEADER_BYTES * 4 + 2) // 3:
        raise PayloadTooLarge("The assertion header exceeds 16 KiB.")


def step1_parse(token: str) -> jws.CompactJws:
    # Structure (three unpadded base64url segments) is the request's shape: 400.
    if not _COMPACT_JWS.fullmatch(token):
        raise InvalidRequest("The assertion is not a compact JWS.")
    # Content (canonical base64url, JSON objects without duplicate members): 401.
    try:
        parsed = jws.parse_compact(token)
    except jws.JwsError:
        raise InvalidAssertion("The assertion is not a well-formed JWS.") from None
    header = parsed.header
    x5c = header.get("x5c")
    if isinstance(x5c, list) and len(x5c) > MAX_X5C_ENTRIES:
        raise PayloadTooLarge("The x5c header holds more than 4 certificates.")
    if set(header) - ALLOWED_HEADER_MEMBERS:
        # crit, jku, jwk, x5u, zip, cty (nested tokens), b64 and anything else.
        raise InvalidAssertion("The assertion header has members that are not allowed.")
    if header.get("typ") != ASSERTION_TYPE:
        raise InvalidAssertion("The assertion typ must be card-assertion+jwt.")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) and c for c in x5c):
        raise InvalidAssertion("The assertion header needs x5c with the card certificate.")
    return parsed


def step2_algorithm(header: dict[str, Any]) -> jws.Algorithm:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise InvalidAssertion("The assertion algorithm is not allowed.")
    return alg  # type: ignore[return-value]


def _certificate(entry: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(entry, validate=True))
    except (binascii.Error, *MALFORMED):
        raise UntrustedCertificate() from None


def step3_certificate_chain(
    header: dict[str, Any], now: datetime, app: Flask
) -> list[x509.Certificate]:
    certificates = [_certificate(entry) for entry in header["x5c"]]
    anchors = get_trust_anchors(now, app)
    return anchors.validate_card_chain(certificates[0], certificates[1:], now)


def step4_revocation(
    session: Session, chain: list[x509.Certificate], now: datetime, app: Flask
) -> None:
    check_chain(session, chain, now, app)


def step5_signature(token: str, leaf: x509.Certificate, algorithm: jws.Algorithm) -> None:
    try:
        jws.verify_signature(token, leaf.public_key(), [algorithm])
    except jws.JwsError:
        raise InvalidAssertion("The assertion signature does not verify.") from None


def _numeric_date(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAssertion("iat and exp must be integers.")
    return value


def step6_claims(claims: dict[str, Any], audience: str, now: datetime) -> str:
    if claims.get("aud") != audience or not isinstance(claims.get("aud"), str):
        raise InvalidAssertion("The assertion is for another audience.")
    issued_at = _numeric_date(claims.get("iat"))
    expires = _numeric_date(claims.get("exp"))
    if not 0 < expires - issued_at <= MAX_LIFETIME_SECONDS:
        raise InvalidAssertion("The assertion lifetime must be at most 300 seconds.")
    current = now.timestamp()
    if issued_at > current + CLOCK_LEEWAY_SECONDS:
        raise InvalidAssertion("The assertion is issued in the future.")
    if expires + CLOCK_LEEWAY_SECONDS < current:
        raise InvalidAssertion("The assertion has expired.")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise InvalidAssertion("The assertion has no valid nonce.")
    return nonce


def step7_nonce(
    session: Session, assertion: CardAssertion, consume: NonceConsumer
) -> ConsumedChallenge:
    challenge = consume(session, assertion.nonce, assertion.verified_at)
    if challenge is None:
        raise assertion.rejection(InvalidNonce())
    return challenge


def check_card_assertion(
    session: Session,
    token: str,
    *,
    now: datetime | None = None,
    app: Flask | None = None,
) -> CardAssertion:
    """Steps 0-6; reads only."""
    application = app or current_app
    at = now or utcnow()
    if not isinstance(token, str):
        raise InvalidRequest()
    step0_size_limits(token)
    parsed = step1_parse(token)
    algorithm = step2_algorithm(parsed.header)
    chain = step3_certificate_chain(parsed.header, at, application)
    try:
        step4_revocation(session, chain, at, application)
        step5_signature(token, chain[0], algorithm)
        nonce = step6_claims(parsed.payload, application.config["SERVICE_AUDIENCE"], at)
    except VerificationError as error:
        claimed_nonce = parsed.payload.get("nonce")
        error.leaf = chain[0]
        error.nonce = claimed_nonce if isinstance(claimed_nonce, str) else None
        raise
    return CardAssertion(chain, parsed.payload, nonce, at)


def verify_card_assertion(
    session: Session,
    token: str,
    consume: NonceConsumer,
    *,
    now: datetime | None = None,
    app: Flask | None = None,
) -> VerifiedAssertion:
    """Steps 0-7. On success the nonce is consumed but NOT committed: the caller commits
    it with whatever the assertion unlocks, or rolls back (and the nonce stays usable)."""
    assertion = check_card_assertion(session, token, now=now, app=app)
    challenge = step7_nonce(session, assertion, consume)
    return VerifiedAssertion(
        assertion.chain, assertion.claims, assertion.nonce, assertion.verified_at, challenge
    )


def verifier_nonce_consumer(client_id: str) -> NonceConsumer:
    """For the verifier flow: challenges issued to this API client."""

    def consume(session: Session, nonce: str, at: datetime) -> ConsumedChallenge | None:
        return consume_nonce(session, nonce, ChallengePurpose.VERIFIER, client_id=client_id, now=at)

    return consume


def holder_nonce_consumer() -> NonceConsumer:
    """For the holder sign-in flow: public holder challenges, bound to no client."""

    def consume(session: Session, nonce: str, at: datetime) -> ConsumedChallenge | None:
        return consume_nonce(session, nonce, ChallengePurpose.HOLDER, now=at)

    return consume


# --- steps 8-9: the verifier flow ---------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """The calling API client, as the access record shows it to the holder."""

    client_id: str
    name: str


@dataclass(frozen=True)
class VerificationResult:
    verification_id: str
    outcome: str
    profession: str
    holder: dict[str, str] | None
    licence: dict[str, Any] | None
    checked_at: datetime
    receipt: str

    def as_json(self) -> dict[str, Any]:
        """The contract's verification response body."""
        return {
            "verification_id": self.verification_id,
            "outcome": self.outcome,
            "profession": self.profession,
            "holder": self.holder,
            "licence": self.licence,
            "checked_at": rfc3339(self.checked_at),
            "receipt": self.receipt,
        }


def sign_receipt(
    app: Flask,
    *,
    verifier: Verifier,
    profession: str,
    outcome: str,
    subject: str | None,
    at: datetime,
) -> tuple[str, str]:
    """A new verification id and its receipt: an ES256 JWS the verifier keeps as evidence
    (``sub`` only when a holder was identified)."""
    verification_id = secrets.token_hex(16)
    claims: dict[str, Any] = {
        "iss": app.config["SERVICE_AUDIENCE"],
        "verification_id": verification_id,
        "verifier": verifier.client_id,
        "profession": profession,
        "outcome": outcome,
        "iat": int(at.timestamp()),
    }
    if subject is not None:
        claims["sub"] = subject
    return verification_id, get_keyring(app).sign(claims, RECEIPT_TYPE)


OUTCOME_BY_STATUS = {"active": "licensed", "suspended": "suspended", "revoked": "revoked"}


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _calendar_date(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_verifier_flow(
    session: Session,
    token: str,
    verifier: Verifier,
    *,
    now: datetime | None = None,
    app: Flask | None = None,
) -> VerificationResult:
    """Steps 0-9 for ``POST /v1/verifications``: reads, then one short write transaction
    (nonce UPDATE, access record INSERT, COMMIT).

    A rejection after the chain validated (including a nonce consumed concurrently while
    this submission was in step 8) is recorded for the card's holder (if the identity
    platform knows the card) in a separate transaction; it never consumes a nonce and the
    response is the same whether or not a record was written.
    """
    application = app or current_app
    at = now or utcnow()
    try:
        assertion = check_card_assertion(session, token, now=at, app=application)
        result = _identify_consume_and_record(session, assertion, verifier, application)
    except VerificationError as error:
        session.rollback()  # the nonce stays usable
        if error.leaf is not None:
            record_rejected_attempt(session, error, verifier, at)
        raise
    except BaseException:
        session.rollback()  # the nonce stays usable
        raise
    return result


#: Built once (hot path): executing a prebuilt Core INSERT with a parameter dict skips
#: statement construction and cache-key generation on every verification.
_INSERT_ACCESS_RECORD = insert(AccessRecord.__table__)


def _identify_consume_and_record(
    session: Session, assertion: CardAssertion, verifier: Verifier, app: Flask
) -> VerificationResult:
    """Steps 8, 7 and 9 of the verifier flow (see the module docstring for the order)."""
    from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
    from licensing.service import licences_for_holder

    at = assertion.verified_at

    # 8. Identity platform: certificate -> licensing agency code -> licences. One lookup of
    # the card's holder yields both codes; the verifier's pairwise code is only used
    # (receipt ``sub``, response ``holder.subject``) when a licence is found below, never
    # recorded or returned for ``not_licensed``.
    codes = get_identity_platform().codes_for_certificate(
        assertion.leaf, [LICENSING_AGENCY, verifier_agency(verifier.client_id)]
    )
    holder_code, verifier_code = codes if codes is not None else (None, None)
    licences = (
        {licence.profession: licence for licence in licences_for_holder(session, holder_code)}
        if holder_code
        else {}
    )

    # 7. The nonce, consumed by the one conditional UPDATE (the first write); its
    # challenge names the profession asked.
    challenge = step7_nonce(session, assertion, verifier_nonce_consumer(verifier.client_id))
    profession = challenge.profession
    assert profession is not None  # verifier challenges always carry one

    # 9. Outcome for the asked profession only, pairwise code, receipt, access record.
    licence = licences.get(profession)
    holder: dict[str, str] | None = None
    licence_view: dict[str, Any] | None = None
    subject: str | None = None
    if licence is None:
        outcome = "not_licensed"
    else:
        outcome = OUTCOME_BY_STATUS[licence.status]
        subject = verifier_code
        holder = {"name": licence.name, "subject": subject}
        licence_view = {
            "status": licence.status,
            "registered_year": licence.registered_year,
            "suspended_until": _calendar_date(licence.suspended_until),
        }
    verification_id, receipt = sign_receipt(
        app, verifier=verifier, profession=profession, outcome=outcome, subject=subject, at=at
    )
    if holder_code is not None:
        session.execute(
            _INSERT_ACCESS_RECORD,
            {
                "id": secrets.token_hex(16),
                "holder_code": holder_code,
                "verifier_client_id": verifier.client_id,
                "verifier_name": verifier.name,
                "at": at,
                "profession": profession,
                "outcome": outcome,
                "verification_id": verification_id,
            },
        )
    session.commit()  # the nonce consumption and the access record, together
    return VerificationResult(
        verification_id, outcome, profession, holder, licence_view, at, receipt
    )


def record_rejected_attempt(
    session: Session, error: VerificationError, verifier: Verifier, at: datetime
) -> None:
    """Access record ``outcome = error.code`` for the holder of a known card.

    Best effort and silent: it must not change the response (no leak of whether the
    card is known) and must not touch the nonce (``peek_profession`` only reads).
    """
    from identity import LICENSING_AGENCY, get_identity_platform

    if error.leaf is None:
        return
    try:
        holder_code = get_identity_platform().code_for_certificate(LICENSING_AGENCY, error.leaf)
        if holder_code is None:
            return
        profession = None
        if error.nonce is not None:
            profession = peek_profession(
                session, error.nonce, ChallengePurpose.VERIFIER, client_id=verifier.client_id
            )
        session.add(
            AccessRecord(
                id=secrets.token_hex(16),
                holder_code=holder_code,
                verifier_client_id=verifier.client_id,
                verifier_name=verifier.name,
                at=at,
                profession=profession,
                outcome=error.code,
            )
        )
        session.commit()
    except Exception as failure:  # noqa: BLE001 - the rejection itself must still be returned
        session.rollback()
        log.warning(
            "could not record a rejected attempt", extra={"error_class": type(failure).__name__}
        )
