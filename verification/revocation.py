"""Card revocation from CRLs (pipeline step 4) and the card authority's CRL feed.

Import (``PUT /v1/card-authority/crl``, ``flask crl import``, the card authority
stand-in's ``publish-crl``): a full CRL, signed by a root or issuing CA of the trust
bundle whose keyUsage has cRLSign, not a delta or partitioned CRL, not past its
nextUpdate, with a CRLNumber that never goes backwards for its issuer (the same number
again is accepted only for the identical CRL, as a no-op). Anything else is 422
``invalid_crl``. The newest CRL per issuing CA is kept in ``verification_crls``.

Check: the card's serial against the newest CRL of the CA that issued it (the CA in
the validated chain, identified by subject and key); certificateHold -> 403
``card_suspended``, any other entry -> 403 ``card_revoked``; no CRL, or one past its
nextUpdate -> 503 ``revocation_unavailable`` (fail closed). A held card that a later CRL
no longer lists works again. Intermediates are checked against their issuer's CRL
when that CA has published one. Nothing named inside a certificate is ever fetched.

Per process, each issuer's revoked serials are cached keyed by the CRL's SHA-256, so a
verification costs one small indexed query; another worker's import is picked up on
the next verification because the digest in the row changes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from flask import Flask, current_app
from sqlalchemy import select, update
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
from verification.models import CardCrl
from verification.trust import MALFORMED, TrustAnchors, ca_key, get_trust_anchors

MAX_CRL_BYTES = 16 * 1024 * 1024
#: A CRL may claim a thisUpdate this far in the future (clock skew), no more.
THIS_UPDATE_LEEWAY = timedelta(minutes=5)
_CRL_NUMBER_DIGITS = 49  # 20 octets, 2**160 < 10**49
_CACHE_KEY = "verification_revocation_cache"
_CACHE_LOCK = threading.Lock()

# CRL extensions we understand; every other critical one makes the CRL unacceptable.
_KNOWN_CRL_EXTENSIONS = {
    x509.CRLNumber.oid,
    x509.AuthorityKeyIdentifier.oid,
    x509.IssuingDistributionPoint.oid,
    x509.AuthorityInformationAccess.oid,
    x509.FreshestCRL.oid,
}
_KNOWN_ENTRY_EXTENSIONS = {x509.CRLReason.oid, x509.InvalidityDate.oid}


@dataclass(frozen=True)
class RevocationSet:
    """The revoked serials of one CRL: serial -> True when on hold (certificateHold)."""

    sha256: str
    next_update: datetime
    entries: dict[int, bool]


@dataclass(frozen=True)
class ImportedCrl:
    issuer: str
    crl_number: int
    this_update: datetime
    next_update: datetime
    revoked: int
    changed: bool  # False when the identical CRL was already current


# --- parsing and checks ---------------------------------------------------------------


def _padded(number: int) -> str:
    return str(number).zfill(_CRL_NUMBER_DIGITS)


def _entries(crl: x509.CertificateRevocationList) -> dict[int, bool]:
    entries: dict[int, bool] = {}
    for revoked in crl:
        on_hold = False
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
                on_hold = reason is x509.ReasonFlags.certificate_hold
        entries[revoked.serial_number] = on_hold
    return entries


def _check_extensions(crl: x509.CertificateRevocationList) -> int:
    """Returns the CRLNumber; refuses delta, partitioned and indirect CRLs."""
    number = None
    for extension in crl.extensions:
        value = extension.value
        if isinstance(value, x509.DeltaCRLIndicator):
            raise InvalidCrl("Delta CRLs are not accepted; send a full CRL.")
        if isinstance(value, x509.CRLNumber):
            number = value.crl_number
        elif isinstance(value, x509.IssuingDistributionPoint) and (
            value.only_contains_user_certs
            or value.only_contains_ca_certs
            or value.only_contains_attribute_certs
            or value.only_some_reasons
            or value.indirect_crl
        ):
            raise InvalidCrl("Partitioned or indirect CRLs are not accepted; send a full CRL.")
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
        select(CardCrl.crl_number, CardCrl.sha256).where(CardCrl.issuer_key == issuer_key)
    ).one_or_none()
    if current is not None:
        if _padded(number) < current.crl_number:
            raise InvalidCrl("The CRLNumber is lower than the current CRL's.")
        if _padded(number) == current.crl_number:
            if current.sha256 != digest:
                raise InvalidCrl("A different CRL with the same CRLNumber is already current.")
            session.rollback()
            return ImportedCrl(issuer_name, number, this_update, next_update, len(entries), False)

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
        # Conditional on the number still being lower: a concurrent newer import wins.
        changed = session.execute(
            update(CardCrl)
            .where(CardCrl.issuer_key == issuer_key, CardCrl.crl_number < _padded(number))
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            session.rollback()
            raise InvalidCrl("The CRLNumber is lower than the current CRL's.")
    _audit(session, actor, issuer_name, number, len(entries), next_update)
    session.commit()
    _cache(application)[issuer_key] = RevocationSet(digest, next_update, entries)
    return result


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


# --- check --------------------------------------------------------------------------


def _cache(app: Flask) -> dict[str, RevocationSet]:
    cache = app.extensions.get(_CACHE_KEY)
    if cache is None:
        with _CACHE_LOCK:
            cache = app.extensions.setdefault(_CACHE_KEY, {})
    return cache


_crls = CardCrl.__table__
_CURRENT_CRLS = select(_crls.c.issuer_key, _crls.c.sha256, _crls.c.next_update)


def _revocation_sets(
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
            der = session.scalar(
                select(CardCrl.der).where(
                    CardCrl.issuer_key == row.issuer_key, CardCrl.sha256 == row.sha256
                )
            )
            if der is None:  # replaced between the two queries; the next request retries
                continue
            try:
                entries = _entries(x509.load_der_x509_crl(der))
            except (InvalidCrl, *MALFORMED):
                continue  # was valid at import; treat as missing (fail closed)
            cached = RevocationSet(row.sha256, row.next_update, entries)
            cache[row.issuer_key] = cached
        sets[row.issuer_key] = cached
    return sets


def check_chain(
    session: Session,
    chain: Sequence[x509.Certificate],
    now: datetime,
    app: Flask | None = None,
) -> None:
    """Step 4 for a validated chain (leaf first, root last)."""
    application = app or current_app
    links = list(zip(chain[:-1], chain[1:], strict=True))
    keys = [ca_key(issuer) for _, issuer in links]
    sets = _revocation_sets(session, keys, application)
    for index, ((cert, _issuer), key) in enumerate(zip(links, keys, strict=True)):
        revocations = sets.get(key)
        if revocations is None:
            if index == 0:
                raise RevocationUnavailable()
            continue  # a CA that never published a CRL for its subordinate CAs
        if revocations.next_update <= now:
            raise RevocationUnavailable()
        on_hold = revocations.entries.get(cert.serial_number)
        if on_hold is None:
            continue
        if on_hold and index == 0:
            raise CardSuspended()
        raise CardRevoked()


# --- readiness ----------------------------------------------------------------------


def issuing_authorities(anchors: TrustAnchors) -> tuple[x509.Certificate, ...]:
    """The CAs that issue cards: the bundle's issuing CAs (or its roots if it has none)."""
    return anchors.issuing_cas or anchors.roots


def crl_readiness() -> str | None:
    """None when every issuing CA of the bundle has a CRL not past its nextUpdate."""
    now = utcnow()
    try:
        anchors = get_trust_anchors(now)
    except TrustAnchorsUnavailable:
        return "card trust anchors unavailable"
    authorities = issuing_authorities(anchors)
    if not authorities:
        return "card trust anchors unavailable"
    keys = {ca_key(authority) for authority in authorities}
    fresh = set(
        get_session().scalars(
            select(CardCrl.issuer_key).where(
                CardCrl.issuer_key.in_(list(keys)), CardCrl.next_update > now
            )
        )
    )
    if keys - fresh:
        return "an issuing CA has no CRL within its nextUpdate"
    return None
