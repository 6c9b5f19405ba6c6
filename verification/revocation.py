"""Card revocation from CRLs (the pipeline's revocation step) and the card authority's feed.

Import (``PUT /v1/card-authority/crl``, ``flask crl import``, the card authority
stand-in's ``publish-crl``): a full CRL, signed by a root or issuing CA of the trust
bundle whose keyUsage has cRLSign. Refused with 422 ``invalid_crl``: a delta, indirect
or partitioned CRL (an issuingDistributionPoint naming a distribution point or limiting
the scope), a critical CRLNumber (RFC 5280 5.2.3), a serial listed twice, a CRL already
past its nextUpdate or valid for more than ``MAX_CRL_VALIDITY`` (7 days), a thisUpdate
older than the current CRL's, a CRLNumber lower than the current one for its issuer
(the same number again is accepted only for the identical CRL, as a no-op). The newest
CRL per CA is kept in ``verification_crls``; every revocation other than
certificateHold is also kept in ``verification_permanent_revocations``, so a later CRL
that omits it cannot lift it.

Status (``card_status``/``card_statuses``, the one rule used by the pipeline and the
holder's status lists): for each link of a validated chain (leaf first), the
certificate's serial against the current CRL of the CA that issued it (identified by
subject and key): a permanent revocation, or any entry of a CA certificate ->
``REVOKED``; certificateHold on the card -> ``HOLD``; no CRL for the card's issuer, or
a stale one -> ``UNKNOWN`` (fail closed); otherwise ``GOOD``. A held card that a later
CRL no longer lists works again. Intermediates are checked against their issuer's CRL
when that CA has published one. Nothing named inside a certificate is ever fetched.
``check_chain`` raises the pipeline's error for a status: 403 ``card_revoked`` /
``card_suspended``, 503 ``revocation_unavailable`` naming the CA and what to do.

Per process, each issuer's revoked serials are cached keyed by the CRL's SHA-256, so a
verification costs one small indexed query; another worker's import is picked up on
the next verification because the digest in the row changes (permanent revocations only
change together with the CRL).
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from flask import Flask, current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import get_session, utcnow
from verification.errors import (
    CardRevoked,
    CardSuspended,
    InvalidCrl,
    RevocationUnavailable,
    TrustAnchorsUnavailable,
)
from verification.models import CardCrl, PermanentRevocation
from verification.trust import MALFORMED, TrustAnchors, ca_key, get_trust_anchors

MAX_CRL_BYTES = 16 * 1024 * 1024
#: A CRL may claim a thisUpdate this far in the future (clock skew), no more.
THIS_UPDATE_LEEWAY = timedelta(minutes=5)
#: Longest nextUpdate - thisUpdate accepted: a card reported lost shows within a week.
MAX_CRL_VALIDITY = timedelta(days=7)
_CRL_NUMBER_DIGITS = 49  # 20 octets, 2**160 < 10**49
_MAX_SERIAL = 2**160  # serials are positive and at most 20 octets (RFC 5280 4.1.2.2)
_CACHE_KEY = "verification_revocation_cache"
_ADVICE_KEY = "verification_stale_crl_advice"
_CACHE_LOCK = threading.Lock()
#: What to do about a missing or stale CRL, unless a registered advice knows better.
FEED_IS_LATE = (
    "the card authority's CRL feed is late: the card authority must publish a new CRL "
    "(PUT /v1/card-authority/crl or flask --app app crl import FILE)"
)

# CRL extensions we understand; every other critical one makes the CRL unacceptable.
_KNOWN_CRL_EXTENSIONS = {
    x509.CRLNumber.oid,
    x509.AuthorityKeyIdentifier.oid,
    x509.IssuingDistributionPoint.oid,
    x509.AuthorityInformationAccess.oid,
    x509.FreshestCRL.oid,
}
_KNOWN_ENTRY_EXTENSIONS = {x509.CRLReason.oid, x509.InvalidityDate.oid}


class CardStatus(enum.StrEnum):
    """A certificate chain's revocation state, from the current CRLs."""

    GOOD = "good"  # listed by no current CRL, never revoked for good
    HOLD = "hold"  # the card is on hold (certificateHold, reported lost): reversible
    REVOKED = "revoked"  # the card, or a CA of its chain, is revoked: final
    UNKNOWN = "unknown"  # no CRL for the card's issuer, or a stale one: fail closed


@dataclass(frozen=True)
class RevocationSet:
    """One CA's revocations: serial -> True when on hold; ``permanent`` never lift."""

    sha256: str
    this_update: datetime
    next_update: datetime
    entries: dict[int, bool]
    permanent: frozenset[int]


@dataclass(frozen=True)
class ImportedCrl:
    issuer: str
    crl_number: int
    this_update: datetime
    next_update: datetime
    revoked: int
    changed: bool  # False when the identical CRL was already current


@dataclass(frozen=True)
class _Entry:
    on_hold: bool
    reason: str | None  # the CRLReason value, None when the entry has none


# --- parsing and checks ---------------------------------------------------------------


def _padded(number: int) -> str:
    return str(number).zfill(_CRL_NUMBER_DIGITS)


def _serial_hex(serial: int) -> str:
    return format(serial, "x")


def _entries(crl: x509.CertificateRevocationList) -> dict[int, _Entry]:
    entries: dict[int, _Entry] = {}
    for revoked in crl:
        serial = revoked.serial_number
        if not 0 <= serial < _MAX_SERIAL:
            raise InvalidCrl("The CRL lists a serial number that is negative or over 20 octets.")
        if serial in entries:
            raise InvalidCrl("The CRL lists a serial number twice; send a CRL without duplicates.")
        reason = None
        for extension in revoked.extensions:
            if extension.oid not in _KNOWN_ENTRY_EXTENSIONS:
                # certificateIssuer (indirect CRL) or anything we do not understand.
                if extension.critical or isinstance(extension.value, x509.CertificateIssuer):
                    raise InvalidCrl("The CRL has an entry extension this service refuses.")
                continue
            if isinstance(extension.value, x509.CRLReason):
                reason = extension.value.reason
                if reason is x509.ReasonFlags.remove_from_crl:
                    raise InvalidCrl("removeFromCRL belongs in delta CRLs, which are refused.")
        entries[serial] = _Entry(
            reason is x509.ReasonFlags.certificate_hold, reason.value if reason else None
        )
    return entries


def _is_partitioned(point: x509.IssuingDistributionPoint) -> bool:
    """True unless the CRL covers every certificate of its issuer (RFC 5280 5.2.5)."""
    return bool(
        point.full_name
        or point.relative_name
        or point.only_contains_user_certs
        or point.only_contains_ca_certs
        or point.only_contains_attribute_certs
        or point.only_some_reasons
        or point.indirect_crl
    )


def _check_extensions(crl: x509.CertificateRevocationList) -> int:
    """Returns the CRLNumber; refuses delta, partitioned and indirect CRLs."""
    number = None
    for extension in crl.extensions:
        value = extension.value
        if isinstance(value, x509.DeltaCRLIndicator):
            raise InvalidCrl("Delta CRLs are not accepted; send a full CRL.")
        if isinstance(value, x509.CRLNumber):
            if extension.critical:
                raise InvalidCrl("The CRLNumber extension must not be critical (RFC 5280 5.2.3).")
            number = value.crl_number
        elif isinstance(value, x509.IssuingDistributionPoint) and _is_partitioned(value):
            raise InvalidCrl(
                "Partitioned or indirect CRLs are not accepted; send one full CRL per CA."
            )
        elif extension.critical and extension.oid not in _KNOWN_CRL_EXTENSIONS:
            raise InvalidCrl("The CRL has a critical extension this service does not know.")
    if number is None or not 0 <= number < 10**_CRL_NUMBER_DIGITS:
        raise InvalidCrl("The CRL has no valid CRLNumber.")
    return number


def _signing_authority(
    crl: x509.CertificateRevocationList, anchors: TrustAnchors
) -> x509.Certificate:
    for authority in anchors.authorities:
        if authority.subject != crl.issuer:
            continue
        try:
            valid = crl.is_signature_valid(authority.public_key())
        except MALFORMED:
            valid = False
        if not valid:
            continue
        try:
            usage = authority.extensions.get_extension_for_class(x509.KeyUsage).value
        except (x509.ExtensionNotFound, *MALFORMED):
            raise InvalidCrl("The CRL issuer's certificate does not allow cRLSign.") from None
        if not usage.crl_sign:
            raise InvalidCrl("The CRL issuer's certificate does not allow cRLSign.")
        return authority
    raise InvalidCrl("The CRL is not signed by a CA of the card trust anchors.")


def _parse(der: bytes, anchors: TrustAnchors, now: datetime):
    if not der or len(der) > MAX_CRL_BYTES:
        raise InvalidCrl("The CRL is empty or too large.")
    try:
        crl = x509.load_der_x509_crl(der)
        authority = _signing_authority(crl, anchors)
        number = _check_extensions(crl)
        entries = _entries(crl)
        this_update, next_update = crl.last_update_utc, crl.next_update_utc
    except MALFORMED:
        # Not DER, or malformed/duplicate extensions (InvalidCrl is none of these).
        raise InvalidCrl("The body is not a well-formed DER CRL.") from None
    if next_update is None:
        raise InvalidCrl("The CRL has no nextUpdate.")
    if next_update <= now:
        raise InvalidCrl("The CRL is already past its nextUpdate.")
    if this_update > now + THIS_UPDATE_LEEWAY or this_update >= next_update:
        raise InvalidCrl("The CRL's thisUpdate is in the future.")
    if next_update - this_update > MAX_CRL_VALIDITY:
        raise InvalidCrl("The CRL's nextUpdate is more than 7 days after its thisUpdate.")
    return crl, authority, number, entries, this_update, next_update


# --- import -------------------------------------------------------------------------


def import_crl(
    session: Session,
    der: bytes,
    actor: str | None,
    *,
    now: datetime | None = None,
    app: Flask | None = None,
) -> ImportedCrl:
    """Validates and stores a CRL (one commit, with an audit entry); see the module doc.

    ``actor`` is the API client id of the card authority, or None from the CLI.
    """
    at = now or utcnow()
    application = app or current_app
    try:
        anchors = get_trust_anchors(at, application)
    except TrustAnchorsUnavailable:
        raise InvalidCrl("No card trust anchors are configured to check the CRL.") from None
    crl, authority, number, entries, this_update, next_update = _parse(der, anchors, at)
    issuer_key = ca_key(authority)
    digest = hashlib.sha256(der).hexdigest()
    issuer_name = crl.issuer.rfc4514_string()[:1000]
    result = ImportedCrl(issuer_name, number, this_update, next_update, len(entries), True)

    current = session.execute(
        select(CardCrl.crl_number, CardCrl.sha256, CardCrl.this_update).where(
            CardCrl.issuer_key == issuer_key
        )
    ).one_or_none()
    if current is not None:
        if _padded(number) < current.crl_number:
            raise InvalidCrl("The CRLNumber is lower than the current CRL's.")
        if _padded(number) == current.crl_number:
            if current.sha256 != digest:
                raise InvalidCrl("A different CRL with the same CRLNumber is already current.")
            session.rollback()
            return ImportedCrl(issuer_name, number, this_update, next_update, len(entries), False)
        if this_update < current.this_update:
            raise InvalidCrl("The CRL's thisUpdate is older than the current CRL's.")

    values = {
        "issuer_name": issuer_name,
        "crl_number": _padded(number),
        "this_update": this_update,
        "next_update": next_update,
        "sha256": digest,
        "der": der,
        "revoked_count": len(entries),
        "imported_at": at,
        "imported_by": actor,
    }
    if current is None:
        session.add(CardCrl(issuer_key=issuer_key, **values))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise InvalidCrl("Another CRL for this issuer was imported at the same time.") from None
    else:
        # Conditional on the stored CRL still being older: a concurrent newer import wins.
        changed = session.execute(
            update(CardCrl)
            .where(
                CardCrl.issuer_key == issuer_key,
                CardCrl.crl_number < _padded(number),
                CardCrl.this_update <= this_update,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            session.rollback()
            raise InvalidCrl("A newer CRL for this issuer is already current.")
    permanent = _record_permanent(session, issuer_key, _padded(number), entries, at)
    _audit(session, actor, issuer_name, number, len(entries), next_update)
    session.commit()
    _cache(application)[issuer_key] = _revocation_set(
        digest, this_update, next_update, entries, permanent
    )
    return result


def _record_permanent(
    session: Session,
    issuer_key: str,
    crl_number: str,
    entries: dict[int, _Entry],
    at: datetime,
) -> frozenset[int]:
    """Keeps every revocation but certificateHold for good; returns all kept so far.

    Runs after the CRL row is written, so concurrent imports for one issuer are
    serialised by that row and never insert the same serial twice.
    """
    kept = {
        int(serial, 16)
        for serial in session.scalars(
            select(PermanentRevocation.serial).where(PermanentRevocation.issuer_key == issuer_key)
        )
    }
    new = [
        {
            "issuer_key": issuer_key,
            "serial": _serial_hex(serial),
            "reason": entry.reason,
            "crl_number": crl_number,
            "recorded_at": at,
        }
        for serial, entry in entries.items()
        if not entry.on_hold and serial not in kept
    ]
    if new:
        session.execute(insert(PermanentRevocation), new)
    return frozenset(kept | {serial for serial, e in entries.items() if not e.on_hold})


def _audit(
    session: Session,
    actor: str | None,
    issuer: str,
    number: int,
    revoked: int,
    next_update: datetime,
) -> None:
    from licensing.audit import record

    # The last write of the unit of work (the audit chain lock is taken last).
    record(
        session,
        actor=actor or "cli",
        action="crl.import",
        target=issuer,
        details={
            "crl_number": str(number),
            "revoked": revoked,
            "next_update": next_update.isoformat(),
        },
    )


# --- status -------------------------------------------------------------------------


def _cache(app: Flask) -> dict[str, RevocationSet]:
    cache = app.extensions.get(_CACHE_KEY)
    if cache is None:
        with _CACHE_LOCK:
            cache = app.extensions.setdefault(_CACHE_KEY, {})
    return cache


def _revocation_set(
    digest: str,
    this_update: datetime,
    next_update: datetime,
    entries: dict[int, _Entry],
    permanent: frozenset[int],
) -> RevocationSet:
    on_hold = {serial: entry.on_hold for serial, entry in entries.items()}
    return RevocationSet(digest, this_update, next_update, on_hold, permanent)


_crls = CardCrl.__table__
_CURRENT_CRLS = select(_crls.c.issuer_key, _crls.c.sha256, _crls.c.this_update, _crls.c.next_update)


def _load_set(session: Session, issuer_key: str, digest: str, this_update, next_update):
    der = session.scalar(
        select(CardCrl.der).where(CardCrl.issuer_key == issuer_key, CardCrl.sha256 == digest)
    )
    if der is None:  # replaced between the two queries; the next request retries
        return None
    try:
        entries = _entries(x509.load_der_x509_crl(der))
    except (InvalidCrl, *MALFORMED):
        return None  # was valid at import; treat as missing (fail closed)
    permanent = frozenset(
        int(serial, 16)
        for serial in session.scalars(
            select(PermanentRevocation.serial).where(PermanentRevocation.issuer_key == issuer_key)
        )
    )
    return _revocation_set(digest, this_update, next_update, entries, permanent)


def revocation_sets(
    session: Session, issuer_keys: Sequence[str], app: Flask
) -> dict[str, RevocationSet]:
    """The current revocation set of each issuer that has a CRL (one query when cached)."""
    cache = _cache(app)
    wanted = set(issuer_keys)
    # One row per CA of the trust bundle: reading them all is cheaper than an IN list.
    rows = session.execute(_CURRENT_CRLS).all()
    sets: dict[str, RevocationSet] = {}
    for row in rows:
        if row.issuer_key not in wanted:
            continue
        cached = cache.get(row.issuer_key)
        if cached is None or cached.sha256 != row.sha256:
            cached = _load_set(
                session, row.issuer_key, row.sha256, row.this_update, row.next_update
            )
            if cached is None:
                continue
            cache[row.issuer_key] = cached
        sets[row.issuer_key] = cached
    return sets


def _chain_keys(chain: Sequence[x509.Certificate]) -> list[str]:
    return [ca_key(issuer) for issuer in chain[1:]]


def _decide(
    chain: Sequence[x509.Certificate],
    keys: Sequence[str],
    sets: dict[str, RevocationSet],
    now: datetime,
) -> tuple[CardStatus, int | None]:
    """The rule (see the module doc); also the chain index of the CA whose CRL is
    missing or stale when the answer is UNKNOWN."""
    status, unknown_at = CardStatus.GOOD, None
    for index, (cert, key) in enumerate(zip(chain[:-1], keys, strict=True)):
        revocations = sets.get(key)
        serial = cert.serial_number
        if revocations is not None and serial in revocations.permanent:
            return CardStatus.REVOKED, None
        if revocations is None and index > 0:
            continue  # a CA that never published a CRL for its subordinate CAs
        if revocations is None or revocations.next_update <= now:
            if unknown_at is None:
                unknown_at = index + 1
            continue
        on_hold = revocations.entries.get(serial)
        if on_hold is None:
            continue
        if not on_hold or index > 0:
            return CardStatus.REVOKED, None
        status = CardStatus.HOLD
    if status is CardStatus.GOOD and unknown_at is not None:
        return CardStatus.UNKNOWN, unknown_at
    return status, None


def card_statuses(
    session: Session,
    chains: Sequence[Sequence[x509.Certificate]],
    now: datetime,
    app: Flask | None = None,
    *,
    sets: dict[str, RevocationSet] | None = None,
) -> list[CardStatus]:
    """The status of each validated chain (leaf first, root last), one CRL query in all;
    none when the caller passes the ``revocation_sets`` of the chains' issuers."""
    application = app or current_app
    keys_per_chain = [_chain_keys(chain) for chain in chains]
    if sets is None:
        sets = revocation_sets(
            session, sorted({k for keys in keys_per_chain for k in keys}), application
        )
    return [
        _decide(chain, keys, sets, now)[0]
        for chain, keys in zip(chains, keys_per_chain, strict=True)
    ]


def card_status(
    session: Session, chain: Sequence[x509.Certificate], now: datetime, app: Flask | None = None
) -> CardStatus:
    return card_statuses(session, [chain], now, app)[0]


def check_chain(
    session: Session,
    chain: Sequence[x509.Certificate],
    now: datetime,
    app: Flask | None = None,
) -> datetime:
    """The pipeline's revocation step: raises unless the chain's status is GOOD; returns
    the thisUpdate of the CRL the card (the leaf) was checked against."""
    application = app or current_app
    keys = _chain_keys(chain)
    sets = revocation_sets(session, keys, application)
    status, unknown_at = _decide(chain, keys, sets, now)
    if status is CardStatus.REVOKED:
        raise CardRevoked()
    if status is CardStatus.HOLD:
        raise CardSuspended()
    if status is CardStatus.UNKNOWN:
        authority = chain[unknown_at]
        role = "root CA" if unknown_at == len(chain) - 1 else "issuing CA"
        raise RevocationUnavailable(
            f"No current CRL for the card's {describe_ca(authority, role)}; "
            f"{stale_crl_advice(authority, application)}."
        )
    # GOOD implies a current CRL of the leaf's issuer (else the answer is UNKNOWN).
    return sets[keys[0]].this_update


# --- naming a CA and saying what to do ------------------------------------------------

StaleCrlAdvice = Callable[[x509.Certificate], str | None]


def add_stale_crl_advice(app: Flask, advice: StaleCrlAdvice) -> None:
    """Lets a stand-in CA say how to publish its CRL (``advice(ca)`` -> text or None)."""
    app.extensions.setdefault(_ADVICE_KEY, []).append(advice)


def stale_crl_advice(authority: x509.Certificate, app: Flask | None = None) -> str:
    application = app or current_app
    for advice in application.extensions.get(_ADVICE_KEY, ()):
        text = advice(authority)
        if text:
            return text
    return FEED_IS_LATE


def describe_ca(authority: x509.Certificate, role: str) -> str:
    """Role, subject and key id of a CA (a CA's names, never a person's)."""
    try:
        key_id = authority.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except (x509.ExtensionNotFound, *MALFORMED):
        key_id = x509.SubjectKeyIdentifier.from_public_key(authority.public_key())
    subject = authority.subject.rfc4514_string()[:200]
    return f"{role} {subject!r} (key id {key_id.digest.hex()})"


# --- readiness and status -----------------------------------------------------------


def issuing_authorities(anchors: TrustAnchors) -> tuple[x509.Certificate, ...]:
    """The CAs that issue cards: the bundle's issuing CAs (or its roots if it has none)."""
    return anchors.issuing_cas or anchors.roots


@dataclass(frozen=True)
class CaCrlState:
    """One CA of the trust bundle and its current CRL (None: it never published one)."""

    authority: x509.Certificate
    role: str  # "root CA" or "issuing CA"
    issues_cards: bool  # then a CRL is required
    crl_number: int | None
    this_update: datetime | None
    next_update: datetime | None

    def problem(self, now: datetime) -> str | None:
        """Why this CA makes the service not ready, or None."""
        if self.next_update is None:
            return "has published no CRL" if self.issues_cards else None
        if self.next_update <= now:
            return f"has a CRL past its nextUpdate ({self.next_update.isoformat()})"
        return None


def ca_crl_states(session: Session, now: datetime, app: Flask | None = None) -> list[CaCrlState]:
    """Every CA of the trust bundle (roots and issuing CAs) with its current CRL."""
    anchors = get_trust_anchors(now, app)
    issuing = set(issuing_authorities(anchors))
    rows = {
        row.issuer_key: row
        for row in session.execute(
            select(CardCrl.issuer_key, CardCrl.crl_number, CardCrl.this_update, CardCrl.next_update)
        )
    }
    states = []
    for authority in anchors.authorities:
        row = rows.get(ca_key(authority))
        states.append(
            CaCrlState(
                authority,
                "root CA" if authority in anchors.roots else "issuing CA",
                authority in issuing,
                int(row.crl_number) if row else None,
                row.this_update if row else None,
                row.next_update if row else None,
            )
        )
    return states


def crl_readiness() -> str | None:
    """None when every issuing CA of the bundle, and every CA of the bundle that has
    published a CRL (roots included), has a CRL not past its nextUpdate. Otherwise the
    CAs at fault (role, subject, key id) and what to do."""
    now = utcnow()
    try:
        states = ca_crl_states(get_session(), now)
    except TrustAnchorsUnavailable:
        return "card trust anchors unavailable"
    if not any(state.issues_cards for state in states):
        return "card trust anchors unavailable"
    problems = [
        f"{describe_ca(state.authority, state.role)} {problem}: {stale_crl_advice(state.authority)}"
        for state in states
        if (problem := state.problem(now))
    ]
    return "; ".join(problems) or None
