"""The card-assertion verification pipeline, numbered in the order the steps run.

 0. Size limits before parsing (body, header, x5c count)          -> 413 payload_too_large
 1. Strict compact JWS parse (once); typ; only alg/typ/x5c/kid     -> 400 / 401 invalid_assertion
 2. alg allow-list: RS256 only                                     -> 401 invalid_assertion
 3. x5c chain to the card trust anchors, card profile, key size    -> 401 untrusted_certificate
 4. Signature of the parsed token with the validated leaf's key   -> 401 invalid_assertion
 5. Claims: aud for this purpose, iat/exp bounds, nonce present,  -> 401 invalid_assertion
    ``verifier`` (when present) the challenge's client, ``consent`` well formed
 6. Revocation against the issuer's newest CRL                     -> 403 card_* / 503
 7. Identity platform: certificate -> licensing code -> licences
 8. Nonce: consumed by one conditional UPDATE (issued to this     -> 401 invalid_nonce
    verifier, unused, unexpired)
 9. Outcome for the asked profession, pairwise code, receipt, access record
    (``verification.outcome``)

Signature and claims come before revocation: a token the card did not sign never
learns the card's status. Steps 0-6 are ``check_card_assertion``, shared by every flow
that accepts a card assertion; the holder sign-in flow then consumes a public holder
challenge (``verify_card_assertion``). The verifier flow (``run_verifier_flow``) runs
0-9 in one transaction whose first write is the nonce UPDATE of step 8: on SQLite the
first write takes the database's write lock until COMMIT, so consuming after the
identity lookup keeps that lock short, and the UPDATE's RETURNING names the asked
profession (no separate read of the challenge). Step 7 therefore reads the holder's
licences of every profession (one indexed query, usually one row) and step 9 keeps the
asked one only. If the nonce is not consumable (replayed, expired, another verifier's,
or consumed by a concurrent submission) the UPDATE matches no row: 401 invalid_nonce,
rolled back, nothing written.

A rejection before the card's signature verified raises a ``verification.errors``
class and is nobody's attempt. From step 5 on the card signed the token, and the
rejection is an ``AssertionRejected`` holding the error and the ``CardAssertion``, so
the flow can tell the card's holder about the attempt (an access-log entry).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from core import jws
from core.claims import ClaimsError, Problem, check_times
from core.db import utcnow
from core.errors import ServiceError, problem_body
from verification.challenges import (
    MAX_NONCE_LENGTH,
    ChallengePurpose,
    ConsumedChallenge,
    consume_nonce,
    peek_challenge,
    peek_challenge_by_id,
    record_challenge_outcome,
)
from verification.errors import (
    InvalidAssertion,
    InvalidNonce,
    InvalidRequest,
    PayloadTooLarge,
    UntrustedCertificate,
    VerificationError,
)
from verification.listeners import Verified, notify
from verification.metrics import IDENTITY_PLATFORM_DURATION, VERIFICATIONS
from verification.outcome import (
    LicenceFacts,
    VerificationResult,
    Verifier,
    answer_to_keep,
    best_effort,
    conclude,
    record_access,
)
from verification.revocation import check_chain
from verification.trust import MALFORMED, get_trust_anchors

ASSERTION_TYPE = "card-assertion+jwt"
ALLOWED_ALGORITHMS: tuple[jws.Algorithm, ...] = ("RS256",)
ALLOWED_HEADER_MEMBERS = frozenset({"alg", "typ", "x5c", "kid"})
MAX_TOKEN_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_X5C_ENTRIES = 4
CLOCK_LEEWAY_SECONDS = 60
MAX_LIFETIME_SECONDS = 300
#: What a card may consent to in an assertion (contract: cross-device card flow).
CONSENTS = frozenset({"monitoring"})
MAX_VERIFIER_ID_LENGTH = 32
# An empty signature (alg "none") has the structure; it fails in step 1 as content.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

#: (session, nonce claim, now) -> the consumed challenge, or None if not consumable.
NonceConsumer = Callable[[Session, str, datetime], ConsumedChallenge | None]


@dataclass(frozen=True)
class CardAssertion:
    """A card assertion whose chain validated and whose signature the card made (steps
    0-4). ``claims`` are the signed claims, checked only if it passed step 5."""

    chain: list[x509.Certificate]  # leaf first, trust anchor last
    claims: dict[str, Any]
    verified_at: datetime
    #: thisUpdate of the CRL the card was checked against (set once step 6 passed).
    crl_this_update: datetime | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def card_key(self) -> rsa.RSAPublicKey:
        key = self.leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):  # step 3 rejects such a leaf already
            raise UntrustedCertificate()
        return key

    @property
    def nonce(self) -> str | None:
        """The nonce claim if it can be one of ours (always, once step 5 passed)."""
        nonce = self.claims.get("nonce")
        if isinstance(nonce, str) and 0 < len(nonce) <= MAX_NONCE_LENGTH:
            return nonce
        return None

    @property
    def consent(self) -> frozenset[str]:
        """What the card signed its consent to (well formed once step 5 passed)."""
        consent = self.claims.get("consent")
        return frozenset(consent) if isinstance(consent, list) else frozenset()


@dataclass(frozen=True)
class VerifiedAssertion(CardAssertion):
    """A card assertion that passed steps 0-6 and whose nonce is consumed (not committed)."""

    challenge: ConsumedChallenge = field(kw_only=True)


class AssertionRejected(Exception):
    """A rejection of an assertion the card signed: ``error`` is the answer, ``assertion``
    names the card (and its nonce claim) so that its holder can be told of the attempt."""

    def __init__(self, error: VerificationError, assertion: CardAssertion) -> None:
        super().__init__(error.code)
        self.error = error
        self.assertion = assertion


# --- steps 0-6 (and 8 for holder sign-in) ---------------------------------------------


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


def step4_signature(
    parsed: jws.CompactJws, leaf: x509.Certificate, algorithm: jws.Algorithm
) -> None:
    try:
        jws.verify_parsed(parsed, leaf.public_key(), algorithm)
    except jws.JwsError:
        raise InvalidAssertion("The assertion signature does not verify.") from None


_TIME_DETAILS = {
    Problem.MISSING: "iat and exp must be integers.",
    Problem.MALFORMED: "iat and exp must be integers.",
    Problem.LIFETIME: "The assertion lifetime must be at most 300 seconds.",
    Problem.FUTURE: "The assertion is issued in the future.",
    Problem.TOO_OLD: "The assertion has expired.",
    Problem.EXPIRED: "The assertion has expired.",
    Problem.NOT_YET_VALID: "The assertion is not valid yet.",
}


def step5_claims(
    claims: dict[str, Any], *, audience: str, verifier_id: str | None, now: datetime
) -> str:
    """The nonce claim, once every claim is within bounds. ``verifier_id`` is the client
    whose challenge this must answer (None: a holder sign-in, which names no verifier)."""
    aud = claims.get("aud")
    if not isinstance(aud, str) or aud != audience:
        raise InvalidAssertion("The assertion is for another audience or purpose.")
    try:
        check_times(
            claims,
            now=now.timestamp(),
            leeway=CLOCK_LEEWAY_SECONDS,
            max_lifetime=MAX_LIFETIME_SECONDS,
            require_nbf=False,
        )
    except ClaimsError as error:
        raise InvalidAssertion(_TIME_DETAILS[error.problem]) from None
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise InvalidAssertion("The assertion has no valid nonce.")
    if "verifier" in claims and claims["verifier"] != verifier_id:
        raise InvalidAssertion(
            "The assertion names another verifier: ask the holder to sign this verifier's request."
        )
    consent = claims.get("consent", [])
    if (
        not isinstance(consent, list)
        or len(consent) > len(CONSENTS)
        or not all(isinstance(item, str) and item in CONSENTS for item in consent)
        or len(set(consent)) != len(consent)
    ):
        raise InvalidAssertion("The assertion's consent must be a list of known consents.")
    return nonce


def step6_revocation(
    session: Session, chain: list[x509.Certificate], now: datetime, app: Flask
) -> datetime:
    return check_chain(session, chain, now, app)


def check_card_assertion(
    session: Session,
    token: str,
    *,
    audience: str,
    verifier_id: str | None,
    now: datetime | None = None,
    app: Flask | None = None,
) -> CardAssertion:
    """Steps 0-6; reads only. Raises a ``VerificationError`` up to step 4 and an
    ``AssertionRejected`` from step 5 on (the card signed the token)."""
    application = app or current_app
    at = now or utcnow()
    if not isinstance(token, str):
        raise InvalidRequest()
    step0_size_limits(token)
    parsed = step1_parse(token)
    algorithm = step2_algorithm(parsed.header)
    chain = step3_certificate_chain(parsed.header, at, application)
    step4_signature(parsed, chain[0], algorithm)
    assertion = CardAssertion(chain, parsed.payload, at)
    try:
        step5_claims(parsed.payload, audience=audience, verifier_id=verifier_id, now=at)
        crl_this_update = step6_revocation(session, chain, at, application)
    except VerificationError as error:
        raise AssertionRejected(error, assertion) from None
    return replace(assertion, crl_this_update=crl_this_update)


def step8_nonce(
    session: Session, assertion: CardAssertion, consume: NonceConsumer
) -> ConsumedChallenge:
    nonce = assertion.nonce
    challenge = consume(session, nonce, assertion.verified_at) if nonce else None
    if challenge is None:
        raise AssertionRejected(InvalidNonce(), assertion)
    return challenge


def verify_card_assertion(
    session: Session,
    token: str,
    consume: NonceConsumer,
    *,
    audience: str,
    verifier_id: str | None = None,
    now: datetime | None = None,
    app: Flask | None = None,
) -> VerifiedAssertion:
    """Steps 0-6 and 8 (no licence lookup: holder sign-in). On success the nonce is
    consumed but NOT committed: the caller commits it with whatever the assertion
    unlocks, or rolls back (and the nonce stays usable)."""
    assertion = check_card_assertion(
        session, token, audience=audience, verifier_id=verifier_id, now=now, app=app
    )
    challenge = step8_nonce(session, assertion, consume)
    return VerifiedAssertion(
        assertion.chain,
        assertion.claims,
        assertion.verified_at,
        assertion.crl_this_update,
        challenge=challenge,
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


# --- steps 7-9: the verifier flow ---------------------------------------------------------


def run_verifier_flow(
    session: Session,
    token: str,
    verifier: Verifier,
    *,
    challenge_id: str | None = None,
    now: datetime | None = None,
    app: Flask | None = None,
) -> VerificationResult:
    """Steps 0-9 for ``POST /v1/verifications`` and, with ``challenge_id``, for the card
    app's ``POST /v1/challenges/{id}/response``: reads, then one short write transaction
    (nonce UPDATE, access record INSERT, the challenge's outcome, COMMIT).

    A rejection of an assertion the card signed (including a nonce consumed concurrently
    while this submission was in step 7) is recorded for the card's holder (if the
    identity platform knows the card) in a separate transaction; it never consumes a
    nonce and the response is the same whether or not a record was written.
    """
    application = app or current_app
    at = now or utcnow()
    flow = "direct" if challenge_id is None else "cross_device"
    try:
        assertion = check_card_assertion(
            session,
            token,
            audience=application.config["SERVICE_AUDIENCE"],
            verifier_id=verifier.client_id,
            now=at,
            app=application,
        )
        result = _identify_consume_and_conclude(
            session, assertion, verifier, challenge_id, application
        )
    except AssertionRejected as rejected:
        session.rollback()  # the nonce stays usable
        record_rejected_attempt(session, rejected, verifier, challenge_id=challenge_id)
        VERIFICATIONS.labels(flow, rejected.error.code).inc()
        raise rejected.error from None
    except ServiceError as error:
        session.rollback()  # the nonce stays usable
        VERIFICATIONS.labels(flow, error.code).inc()
        raise
    except BaseException:
        session.rollback()  # the nonce stays usable
        raise
    VERIFICATIONS.labels(flow, result.outcome).inc()
    return result


def _identify_consume_and_conclude(
    session: Session,
    assertion: CardAssertion,
    verifier: Verifier,
    challenge_id: str | None,
    app: Flask,
) -> VerificationResult:
    """Steps 7, 8 and 9 of the verifier flow (see the module docstring)."""
    from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
    from licensing.service import licences_for_holder

    at = assertion.verified_at

    # 7. Identity platform: certificate -> licensing agency code -> licences. One lookup of
    # the card's holder yields both codes; the verifier's pairwise code is only used
    # (receipt ``sub``, response ``holder.subject``) when a licence is found below, never
    # recorded or returned for ``not_licensed``.
    with IDENTITY_PLATFORM_DURATION.time():
        codes = get_identity_platform().codes_for_certificate(
            assertion.leaf, [LICENSING_AGENCY, verifier_agency(verifier.client_id)]
        )
    holder_code, verifier_code = codes if codes is not None else (None, None)
    licences = (
        {licence.profession: licence for licence in licences_for_holder(session, holder_code)}
        if holder_code
        else {}
    )

    # 8. The nonce, consumed by the one conditional UPDATE (the first write); its
    # challenge names the profession asked. On the card app's route the nonce must be
    # the one of the challenge it answers.
    challenge = step8_nonce(session, assertion, verifier_nonce_consumer(verifier.client_id))
    if challenge_id is not None and challenge.challenge_id != challenge_id:
        raise AssertionRejected(InvalidNonce(), assertion)
    profession = challenge.profession
    assert profession is not None  # verifier challenges always carry one

    # 9. Outcome for the asked profession only, pairwise code, receipt, access record.
    licence = licences.get(profession)
    result = conclude(
        app,
        verifier=verifier,
        profession=profession,
        licence=LicenceFacts(
            licence.status,
            licence.name,
            licence.registered_year,
            licence.suspended_until,
            licence.changed_at,
        )
        if licence is not None
        else None,
        subject=verifier_code,
        at=at,
        crl_this_update=assertion.crl_this_update,
        # Consent counts only if the card signed it and the challenge asked for it.
        consented_to=sorted(assertion.consent & challenge.consents),
    )
    if holder_code is not None:
        record_access(
            session,
            holder_code=holder_code,
            verifier=verifier,
            at=at,
            profession=profession,
            outcome=result.outcome,
            verification_id=result.verification_id,
        )
    record_challenge_outcome(
        session,
        challenge.challenge_id,
        verification=answer_to_keep(result),
        consented_to=list(result.consented_to),
    )
    if result.consented_to and licence is not None and holder_code and verifier_code:
        # Monitoring (registered listener) starts in this same transaction.
        notify(
            session,
            Verified(
                verifier.client_id,
                verifier.name,
                verifier_code,
                holder_code,
                licence.licence_id,
                profession,
                at,
                result.consented_to,
            ),
        )
    session.commit()  # the nonce, the access record, the outcome and any consent, together
    return result


def record_rejected_attempt(
    session: Session,
    rejected: AssertionRejected,
    verifier: Verifier,
    *,
    challenge_id: str | None = None,
) -> None:
    """The holder of a known card learns of a rejected attempt the card signed, and the
    challenge it answered (if it is this verifier's) shows the rejection. Best effort,
    and never touches the nonce (``peek_challenge`` only reads)."""
    from identity import LICENSING_AGENCY, get_identity_platform

    assertion, error = rejected.assertion, rejected.error
    with best_effort(session):
        nonce = assertion.nonce
        if challenge_id is not None:  # the card app answered this challenge's request
            challenge = peek_challenge_by_id(session, challenge_id)
        elif nonce is not None:
            challenge = peek_challenge(
                session, nonce, ChallengePurpose.VERIFIER, client_id=verifier.client_id
            )
        else:
            challenge = None
        if challenge is not None:
            record_challenge_outcome(session, challenge.challenge_id, rejection=problem_body(error))
        holder_code = get_identity_platform().code_for_certificate(LICENSING_AGENCY, assertion.leaf)
        if holder_code is not None:
            record_access(
                session,
                holder_code=holder_code,
                verifier=verifier,
                at=assertion.verified_at,
                profession=challenge.profession if challenge else None,
                outcome=error.code,
            )
