"""Portable licence credentials (SD-JWT VC) and their Token Status Lists.

Issuance (``issue_credential``): for a signed-in holder's current, active licence of one
profession, bound to the card they signed in with (``cnf.jwk``), with an entry in a
Token Status List picked at random (so the index says nothing about issuance order),
for at most 24 hours and never past the card certificate's notAfter.

Status (``entry_status``/``build_status_list``): derived at request time, never stored.
An entry is INVALID when the licence is revoked, deceased or erased (or gone) or the card is
revoked; SUSPENDED when the licence is suspended, the card is on hold (reported lost),
or the card's revocation state cannot be established (no CRL or a stale one: fail
closed, but reversibly); VALID otherwise. So every regulator action and every CRL shows
in the very next status list, with nothing to keep in sync.

Online check (``check_presentation``): ``POST /v1/presentations`` for platforms that
do not implement SD-JWT: the same checks an offline verifier does, then the live status,
with the privacy rules of a verification (only what the holder disclosed, the calling
verifier's own pairwise code), a receipt, and an access record for the holder.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import public_base_url as config_public_base_url
from core.db import utcnow
from core.errors import InvalidRequest, NotFound, ServiceError, TooManyRequests
from core.signing import get_keyring
from holder import sd_jwt
from holder import status_list as sl
from holder.errors import InvalidPresentation, LicenceNotActive, NotLicensed
from holder.models import HolderCredential, HolderStatusList
from verification.errors import CardRevoked
from verification.outcome import Verifier, record_access
from verification.revocation import CardStatus, revocation_sets
from verification.revocation import card_statuses as revocation_statuses

log = logging.getLogger("licence_service.holder")

VCT = "urn:licence-verification:vct:professional-licence:1"
CREDENTIAL_LIFETIME = timedelta(hours=24)  # upper bound; HOLDER_CREDENTIAL_LIFETIME may lower it
STATUS_LIST_SIZE = 8192  # entries (2 KiB raw at 2 bits)
STATUS_LIST_FILL = 0.5  # open a new list when half full: random picks stay cheap
STATUS_LIST_TOKEN_LIFETIME = 600  # seconds; the token's exp
STATUS_LIST_PATH = "/v1/status-lists/"
_ALLOCATION_ATTEMPTS = 8
_CARD_CACHE_KEY = "holder_card_status_cache"
MAX_CACHED_CARDS = 50_000  # per process; a few hundred bytes each
STATUS_LIST_CACHE_KEY = "holder_status_list_cache"
_STATUS_LIST_BUILD = threading.Lock()
KEY_BINDING_MAX_AGE = 300  # seconds: a presentation is checked within 5 minutes of its KB-JWT
MAX_NONCE_CHARS = 512
MAX_AUDIENCE_CHARS = 512
#: The access log entry written with every issued credential.
HOLDER_PORTAL_ID = "holder-portal"
CREDENTIAL_ISSUED_NAME = "Credential issued for your card"
CREDENTIAL_ISSUED = "credential_issued"


PRESENTATION_DETAILS = {
    "issuer_signature": "The credential was not issued by this service.",
    "claims": "The credential's claims are not acceptable.",
    "expired": "The credential has expired.",
    "disclosure": "A disclosure does not belong to the credential or is repeated.",
    "key_binding_missing": "The presentation has no key-binding JWT.",
    "key_binding": "The key-binding JWT is not signed by the credential's card or is malformed.",
    "nonce": "The key-binding JWT is for another nonce.",
    "audience": "The key-binding JWT is for another audience.",
    "stale": "The key-binding JWT is too old.",
    "unknown_credential": "The credential is not known to this service.",
    "audience_not_registered": "The audience is not one registered to this client; use the "
    "audience that POST /v1/challenges (kind presentation) gave you.",
    "nonce_not_issued": "The nonce was not issued to this client for this profession, or it "
    "was used or has expired; ask POST /v1/challenges (kind presentation) for a new one.",
}


# --- configuration --------------------------------------------------------------------


def issuer_id(app: Flask | None = None) -> str:
    """``iss`` of our credentials: the service's identifier (as in receipts)."""
    return (app or current_app).config["SERVICE_AUDIENCE"]


def public_base_url(app: Flask | None = None) -> str:
    """Where relying parties reach this service (status list URIs are absolute).

    ``PUBLIC_BASE_URL`` (see core/config.py); never taken from the request's Host.
    """
    return config_public_base_url((app or current_app).config)


def credential_lifetime(app: Flask | None = None) -> timedelta:
    seconds = int((app or current_app).config["HOLDER_CREDENTIAL_LIFETIME"])
    return min(timedelta(seconds=seconds), CREDENTIAL_LIFETIME)


def status_list_uri(list_id: str, app: Flask | None = None) -> str:
    return f"{public_base_url(app)}{STATUS_LIST_PATH}{list_id}"


def list_id_from_uri(uri: Any) -> str | None:
    """The list id of a status list URI we issued, whatever ``PUBLIC_BASE_URL`` was then
    (it may have changed since: credentials are matched by list id, not by URL prefix;
    the issuer signature over the credential vouches for the URI)."""
    if not isinstance(uri, str):
        return None
    try:
        path = urlsplit(uri).path
    except ValueError:
        return None
    _, found, list_id = path.rpartition(STATUS_LIST_PATH)
    if not found or not list_id.isascii() or not list_id.isalnum() or len(list_id) > 32:
        return None
    return list_id


# --- card chains ----------------------------------------------------------------------


def encode_chain(chain: Sequence[x509.Certificate]) -> list[str]:
    from cryptography.hazmat.primitives.serialization import Encoding

    return [base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii") for cert in chain]


def decode_chain(encoded: Iterable[str]) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(base64.b64decode(item)) for item in encoded]


@dataclass(frozen=True)
class _CachedCard:
    """A stored card chain decoded once per process, its issuers' keys (leaf's first),
    and its last status: valid while the same CRLs (by SHA-256) are current, from
    ``computed_at`` until ``valid_until`` (their first nextUpdate or the leaf's notAfter)."""

    chain: tuple[x509.Certificate, ...]
    issuers: tuple[str, ...]
    crls: tuple[str | None, ...] = ()
    status: int | None = None
    computed_at: datetime | None = None
    valid_until: datetime | None = None


def _parse_card(chain: Sequence[str]) -> _CachedCard:
    from verification.trust import ca_key

    certificates = tuple(decode_chain(chain))
    return _CachedCard(certificates, tuple(ca_key(issuer) for issuer in certificates[1:]))


def card_statuses(
    session: Session, chains: Sequence[Sequence[str]], now: datetime, app: Flask
) -> list[int]:
    """Each stored (encoded) card chain's contribution to an entry, by
    ``verification.revocation``'s rule (one CRL query for all): revoked or expired ->
    invalid; on hold, or unknown (no CRL or a stale one) -> suspended (unknown is not
    valid, but not final either); good -> valid.

    A status list holds thousands of live entries: each chain is decoded once per
    process, and its status is kept for the CRLs it was computed with, so it is
    re-evaluated only when one of its issuers' CRLs changes or reaches its nextUpdate.
    """
    cache: dict[bytes, _CachedCard] = app.extensions.setdefault(_CARD_CACHE_KEY, {})
    if len(cache) > MAX_CACHED_CARDS:
        cache.clear()  # many cards seen once: start over rather than grow without bound
    keys = [hashlib.sha256("\n".join(chain).encode("ascii")).digest() for chain in chains]
    for key, chain in zip(keys, chains, strict=True):
        if key not in cache:
            cache[key] = _parse_card(chain)
    sets = revocation_sets(
        session, sorted({issuer for key in keys for issuer in cache[key].issuers}), app
    )
    stale = []
    for key in dict.fromkeys(keys):
        card = cache[key]
        crls = tuple(sets[issuer].sha256 if issuer in sets else None for issuer in card.issuers)
        if card.crls != crls or not card.computed_at <= now < card.valid_until:  # type: ignore[operator]
            cache[key] = replace(card, crls=crls, computed_at=now)
            stale.append(key)
    fresh = revocation_statuses(session, [cache[key].chain for key in stale], now, app, sets=sets)
    for key, status in zip(stale, fresh, strict=True):
        card = cache[key]
        not_after = card.chain[0].not_valid_after_utc
        expired = not_after <= now
        updates = [
            sets[i].next_update for i in card.issuers if i in sets and sets[i].next_update > now
        ]
        cache[key] = replace(
            card,
            status=sl.STATUS_INVALID if expired else _CARD_STATUS[status],
            valid_until=datetime.max.replace(tzinfo=UTC) if expired else min([not_after, *updates]),
        )
    return [cache[key].status for key in keys]  # type: ignore[misc]


_CARD_STATUS = {
    CardStatus.GOOD: sl.STATUS_VALID,
    CardStatus.HOLD: sl.STATUS_SUSPENDED,
    CardStatus.UNKNOWN: sl.STATUS_SUSPENDED,
    CardStatus.REVOKED: sl.STATUS_INVALID,
}


# --- licences -------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenceState:
    licence_id: str
    status: str  # active | suspended | revoked | deceased | erased
    suspended_until: date | None
    changed_at: datetime  # when the register last changed for it


def licence_states(session: Session, licence_ids: Iterable[str]) -> dict[str, LicenceState]:
    """Effective status of each licence, as of now (one query, read-only)."""
    from licensing.models import Licence
    from licensing.service import (
        effective_status,
        effective_suspended_until,
        register_changed_at,
        today,
    )

    ids = sorted(set(licence_ids))
    if not ids:
        return {}
    day = today()
    rows = session.execute(
        select(Licence.id, Licence.status, Licence.suspended_until, Licence.updated_at).where(
            Licence.id.in_(ids)
        )
    ).all()
    return {
        row.id: LicenceState(
            row.id,
            effective_status(row, day),
            effective_suspended_until(row, day),
            register_changed_at(row, day),
        )
        for row in rows
    }


_LICENCE_STATUS = {"active": sl.STATUS_VALID, "suspended": sl.STATUS_SUSPENDED}


def combine(licence: LicenceState | None, card: int) -> int:
    licence_value = _LICENCE_STATUS.get(licence.status, sl.STATUS_INVALID) if licence else 1
    if sl.STATUS_INVALID in (licence_value, card):
        return sl.STATUS_INVALID
    if sl.STATUS_SUSPENDED in (licence_value, card):
        return sl.STATUS_SUSPENDED
    return sl.STATUS_VALID


# --- status lists ---------------------------------------------------------------------


def _open_list(session: Session, now: datetime) -> HolderStatusList:
    current = session.scalars(
        select(HolderStatusList).order_by(HolderStatusList.created_at.desc()).limit(1)
    ).first()
    if current is not None:
        used = session.scalar(
            select(func.count())
            .select_from(HolderCredential)
            .where(HolderCredential.status_list_id == current.id)
        )
        if (used or 0) < current.size * STATUS_LIST_FILL:
            return current
    created = HolderStatusList(id=secrets.token_hex(8), size=STATUS_LIST_SIZE, created_at=now)
    session.add(created)
    session.flush()
    return created


def build_status_list(
    session: Session, list_id: str, now: datetime | None = None, app: Flask | None = None
) -> str:
    """The signed Status List Token for ``list_id``, as of now. 404 for an unknown list."""
    application = app or current_app
    at = now or utcnow()
    record = session.get(HolderStatusList, list_id)
    if record is None:
        raise NotFound("No such status list.")
    # The three columns only: loading thousands of ORM entities cost most of a build.
    credentials = session.execute(
        select(
            HolderCredential.idx, HolderCredential.licence_id, HolderCredential.card_chain
        ).where(
            HolderCredential.status_list_id == list_id,
            HolderCredential.expires_at > at - timedelta(minutes=5),
        )
    ).all()
    states = licence_states(session, (c.licence_id for c in credentials))
    statuses = sl.StatusList(record.size)
    distinct = list(dict.fromkeys(tuple(c.card_chain) for c in credentials))
    cards = dict(zip(distinct, card_statuses(session, distinct, at, application), strict=True))
    for credential in credentials:
        card = cards[tuple(credential.card_chain)]
        statuses[credential.idx] = combine(states.get(credential.licence_id), card)
    issued_at = int(at.timestamp())
    claims = sl.status_list_claims(
        uri=status_list_uri(list_id, application),
        status_list=statuses,
        issued_at=issued_at,
        expires_at=issued_at + STATUS_LIST_TOKEN_LIFETIME,
        ttl=int(application.config["STATUS_LIST_TTL"]),
        issuer=issuer_id(application),
    )
    return get_keyring(application).sign(claims, sl.TOKEN_TYPE)


@dataclass(frozen=True)
class PublishedStatusList:
    token: str
    etag: str  # SHA-256 of the token, for conditional requests
    built_at: datetime


def published_status_list(
    session: Session, list_id: str, now: datetime | None = None, app: Flask | None = None
) -> PublishedStatusList:
    """The Status List Token for ``list_id``, built at most once per ``STATUS_LIST_TTL``
    per process: a public, pollable address must not cost a rebuild per request (each
    rebuild reads every live credential of the list). Within the TTL a status change is
    not yet visible, as relying parties caching for the token's ``ttl`` would not see it.
    """
    application = app or current_app
    at = now or utcnow()
    ttl = timedelta(seconds=int(application.config["STATUS_LIST_TTL"]))
    cache: dict[str, PublishedStatusList] = application.extensions.setdefault(
        STATUS_LIST_CACHE_KEY, {}
    )

    def cached() -> PublishedStatusList | None:
        entry = cache.get(list_id)
        return entry if entry is not None and entry.built_at <= at < entry.built_at + ttl else None

    entry = cached()
    if entry is not None:
        return entry
    with _STATUS_LIST_BUILD:  # concurrent misses wait for one build instead of each building
        entry = cached()
        if entry is None:
            token = build_status_list(session, list_id, at, application)
            etag = hashlib.sha256(token.encode("ascii")).hexdigest()[:32]
            entry = cache[list_id] = PublishedStatusList(token, etag, at)
    return entry


# --- issuance -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    credential: str
    credential_id: str
    expires_at: datetime


def issue_credential(
    session: Session,
    *,
    holder_code: str,
    card_chain: Sequence[str],
    profession: str,
    now: datetime | None = None,
    app: Flask | None = None,
) -> IssuedCredential:
    """Issues an SD-JWT VC for the holder's active licence of ``profession``; one commit."""
    from licensing.service import licence_for_holder

    application = app or current_app
    at = now or utcnow()
    licence = licence_for_holder(session, holder_code, profession)
    if licence is None:
        raise NotLicensed()
    if licence.status != "active":
        raise LicenceNotActive()
    chain = decode_chain(card_chain)
    # The card must be usable right now (raises card_revoked/card_suspended/503).
    from verification.revocation import check_chain

    check_chain(session, chain, at, application)
    _check_live_credentials(session, holder_code, profession, at, application)
    leaf = chain[0]
    expires_at = min(at + credential_lifetime(application), leaf.not_valid_after_utc)
    if expires_at <= at:
        raise CardRevoked("The card certificate has expired.")

    credential_id = secrets.token_hex(16)
    for _attempt in range(_ALLOCATION_ATTEMPTS):
        status_list = _open_list(session, at)
        idx = secrets.randbelow(status_list.size)
        # The holder's log shows every credential issued for their card (a thief who
        # has the card and its PIN cannot get one unnoticed).
        record_access(
            session,
            holder_code=holder_code,
            verifier=Verifier(HOLDER_PORTAL_ID, CREDENTIAL_ISSUED_NAME),
            at=at,
            profession=profession,
            outcome=CREDENTIAL_ISSUED,
        )
        session.add(
            HolderCredential(
                id=credential_id,
                status_list_id=status_list.id,
                idx=idx,
                holder_code=holder_code,
                licence_id=licence.licence_id,
                profession=profession,
                card_chain=list(card_chain),
                issued_at=at,
                expires_at=expires_at,
            )
        )
        try:
            session.commit()
            break
        except IntegrityError:
            session.rollback()  # that index was taken meanwhile: pick another
    else:
        raise ServiceError("Could not allocate a status list entry.")

    keyring = get_keyring(application)
    claims = {
        "iss": issuer_id(application),
        "iat": int(at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "vct": VCT,
        "profession": profession,
        "licence_status": "active",
        "cnf": {"jwk": sd_jwt.rsa_public_jwk(leaf.public_key())},
        "status": {
            "status_list": {"idx": idx, "uri": status_list_uri(status_list.id, application)}
        },
    }
    disclosable = {"name": licence.name, "registered_year": licence.registered_year}
    token = sd_jwt.issue(
        claims, disclosable, private_key=keyring.active.private_key, kid=keyring.active.kid
    )
    return IssuedCredential(token, credential_id, expires_at)


def _check_live_credentials(
    session: Session, holder_code: str, profession: str, at: datetime, app: Flask
) -> None:
    """429 at ``HOLDER_MAX_LIVE_CREDENTIALS`` unexpired credentials for one holder and
    profession: each takes a status list entry, and a holder needs only a few."""
    cap = int(app.config["HOLDER_MAX_LIVE_CREDENTIALS"])
    live = session.scalar(
        select(func.count())
        .select_from(HolderCredential)
        .where(
            HolderCredential.holder_code == holder_code,
            HolderCredential.profession == profession,
            HolderCredential.expires_at > at,
        )
    )
    if (live or 0) >= cap:
        raise TooManyRequests(
            f"You already hold {cap} unexpired credentials for this profession; use one "
            "of them, or ask again when one has expired."
        )


def prune_credentials(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    """Deletes records of credentials expired more than ``older_than`` ago (their status
    list entries may then be reused: nobody can present an expired credential)."""
    from sqlalchemy import delete

    result = session.execute(
        delete(HolderCredential).where(HolderCredential.expires_at < utcnow() - older_than)
    )
    session.commit()
    return result.rowcount or 0


# --- online presentation check ----------------------------------------------------------


def issuer_key_for_kid(app: Flask):
    keyring = get_keyring(app)

    def lookup(kid: str) -> Any | None:
        key = keyring.key(kid)
        return key.public_key if key is not None else None

    return lookup


def verify_presentation(
    presentation: Any,
    *,
    nonce: str,
    audience: str,
    now: datetime,
    app: Flask,
) -> sd_jwt.VerifiedPresentation:
    """The offline checks, against our own keys; raises ``sd_jwt.SdJwtError``."""
    return sd_jwt.verify_presentation(
        presentation,
        issuer_key_for_kid=issuer_key_for_kid(app),
        expected_issuer=issuer_id(app),
        expected_vct=VCT,
        nonce=nonce,
        audience=audience,
        now=int(now.timestamp()),
        max_key_binding_age=KEY_BINDING_MAX_AGE,
    )


def find_credential(session: Session, issuer_claims: dict[str, Any]) -> HolderCredential | None:
    """The credential record for verified issuer claims (via its status list entry)."""
    try:
        ref = issuer_claims["status"]["status_list"]
        list_id = list_id_from_uri(ref["uri"])
        idx = ref["idx"]
    except (KeyError, TypeError):
        return None
    if list_id is None or not isinstance(idx, int) or isinstance(idx, bool):
        return None
    credential = session.scalar(
        select(HolderCredential).where(
            HolderCredential.status_list_id == list_id, HolderCredential.idx == idx
        )
    )
    if credential is None or credential.profession != issuer_claims.get("profession"):
        return None
    if int(credential.expires_at.timestamp()) != issuer_claims.get("exp"):
        return None
    return credential


def presentation_error(error: sd_jwt.SdJwtError) -> ServiceError:
    if error.reason == "malformed":
        return InvalidRequest("The presentation is not a well-formed SD-JWT.")
    return InvalidPresentation(PRESENTATION_DETAILS.get(error.reason))


def check_request_fields(nonce: Any, audience: Any) -> None:
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_CHARS:
        raise InvalidRequest("The nonce must be 1 to 512 characters.")
    if not isinstance(audience, str) or not 0 < len(audience) <= MAX_AUDIENCE_CHARS:
        raise InvalidRequest("The audience must be 1 to 512 characters.")
