"""The card authority's trust bundle and certificate path validation (pipeline step 3).

``CARD_TRUST_ANCHORS`` is a PEM bundle of self-signed roots and issuing (intermediate)
CA certificates. Roots go into a ``cryptography.x509.verification.Store``; each
issuing CA is itself path-validated against the roots when the bundle is loaded and
only then used (and cached) as an intermediate. Path validation is
``cryptography.x509.verification`` with every option spelled out:

- ``PolicyBuilder().store(roots).time(server now).max_chain_depth(...)``;
- ``extension_policies``: CA certificates follow ``ExtensionPolicy.webpki_defaults_ca()``
  (basicConstraints cA, keyUsage keyCertSign, ...); the card (end entity) follows
  ``ExtensionPolicy.webpki_defaults_ee()`` (RFC 5280 end-entity rules: authorityKeyIdentifier
  present, no nameConstraints, a well-formed non-critical AIA, a critical SAN when the
  subject is empty, ...) with the card profile on top: subjectAltName optional (JPKI
  cards have none) but critical when the subject is empty, keyUsage present with
  digitalSignature and without keyCertSign/cRLSign, certificatePolicies present with the
  user-authentication policy OID, basicConstraints (if any) not a CA, extendedKeyUsage
  (if any) allowing client authentication; any other critical extension is rejected by
  the library;
- ``build_client_verifier()``: a card certificate names no DNS name or IP address.

The library does not check key sizes (it accepts a 1024-bit card key) nor revocation:
``check_key_sizes`` requires RSA keys of 2048 bits or more on the whole chain, and the
card key must be RSA (JPKI profile, RS256); revocation is ``verification.revocation``.
Nothing named inside a certificate (AIA, CRL distribution points) is ever fetched.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from flask import Flask, current_app

from verification.errors import TrustAnchorsUnavailable, UntrustedCertificate

log = logging.getLogger("licence_service.verification.trust")

USER_AUTH_POLICY_OID = x509.ObjectIdentifier("2.25.335375686075668403148597806950444072777")
MIN_RSA_BITS = 2048
MAX_CHAIN_DEPTH = 2  # intermediates between the card and a root (x5c holds at most 4)
RELOAD_AFTER_SECONDS = 3600  # re-validate the bundle's issuing CAs at least hourly
_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_EXTENSION_KEY = "verification_trust_anchors"
_LOCK = threading.Lock()


#: What parsing a hostile certificate may raise besides VerificationError.
MALFORMED = (
    ValueError,
    TypeError,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)


class _ProfileViolation(ValueError):
    """Raised inside extension validators; the library turns it into VerificationError."""


# --- extension policies -------------------------------------------------------------


def _card_key_usage(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature or usage.key_cert_sign or usage.crl_sign:
        raise _ProfileViolation("card keyUsage must be digitalSignature only")


def _card_policies(
    _policy: Policy, _cert: x509.Certificate, policies: x509.CertificatePolicies
) -> None:
    if not any(info.policy_identifier == USER_AUTH_POLICY_OID for info in policies):
        raise _ProfileViolation("card certificate lacks the user-authentication policy")


def _card_not_ca(
    _policy: Policy, _cert: x509.Certificate, constraints: x509.BasicConstraints | None
) -> None:
    if constraints is not None and constraints.ca:
        raise _ProfileViolation("a card certificate must not be a CA")


def _card_eku(
    _policy: Policy, _cert: x509.Certificate, usages: x509.ExtendedKeyUsage | None
) -> None:
    allowed = {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if usages is not None and not allowed & set(usages):
        raise _ProfileViolation("card extendedKeyUsage excludes client authentication")


def _card_subject_names(
    _policy: Policy, cert: x509.Certificate, names: x509.SubjectAlternativeName | None
) -> None:
    # JPKI cards carry no SAN, which the webpki defaults would require; RFC 5280 4.2.1.6
    # still applies: an empty subject needs a SAN, and that SAN must be critical.
    if len(cert.subject) == 0 and (
        names is None
        or not cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    ):
        raise _ProfileViolation("an empty subject needs a critical subjectAltName")


def _ca_is_ca(_policy: Policy, _cert: x509.Certificate, constraints: x509.BasicConstraints) -> None:
    if not constraints.ca:
        raise _ProfileViolation("not a CA")


def _ca_signs_certificates(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.key_cert_sign:
        raise _ProfileViolation("CA keyUsage lacks keyCertSign")


def card_profile_policy() -> ExtensionPolicy:
    """End-entity policy for a card's user-authentication certificate."""
    return (
        ExtensionPolicy.webpki_defaults_ee()
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _card_key_usage)
        .require_present(x509.CertificatePolicies, Criticality.AGNOSTIC, _card_policies)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _card_not_ca)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _card_eku)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, _card_subject_names)
    )


def ca_as_leaf_policy() -> ExtensionPolicy:
    """End-entity policy used only to validate the bundle's issuing CAs themselves."""
    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.CRITICAL, _ca_is_ca)
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_signs_certificates)
    )


CA_POLICY = ExtensionPolicy.webpki_defaults_ca()
CARD_POLICY = card_profile_policy()
CA_AS_LEAF_POLICY = ca_as_leaf_policy()


# --- helpers ------------------------------------------------------------------------


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(_DER)


@functools.lru_cache(maxsize=64)
def ca_key(cert: x509.Certificate) -> str:
    """Stable identifier of a CA: SHA-256 over its subject and its public key.

    Only computed for the trust bundle's CAs and the CAs of validated chains (a handful),
    so a small cache keyed by the certificate (its DER) saves the work per verification.
    """
    digest = hashlib.sha256()
    digest.update(cert.subject.public_bytes())
    digest.update(cert.public_key().public_bytes(_DER, _SPKI))
    return digest.hexdigest()


def check_key_sizes(chain: Sequence[x509.Certificate]) -> None:
    """Card key RSA >= 2048 bits; CA keys, when RSA, too (the library does not check)."""
    leaf_key = chain[0].public_key()
    if not isinstance(leaf_key, rsa.RSAPublicKey) or leaf_key.key_size < MIN_RSA_BITS:
        raise UntrustedCertificate()
    for cert in chain[1:]:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise UntrustedCertificate()


def _is_self_signed_ca(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cert.verify_directly_issued_by(cert)
    except (x509.ExtensionNotFound, InvalidSignature, *MALFORMED):
        return False
    return constraints.ca


# --- the trust anchors ----------------------------------------------------------------


@dataclass(frozen=True)
class TrustAnchors:
    roots: tuple[x509.Certificate, ...]
    issuing_cas: tuple[x509.Certificate, ...]  # validated against the roots at load time
    store: Store | None
    loaded_at: float

    @property
    def authorities(self) -> tuple[x509.Certificate, ...]:
        """Every CA of the bundle that may sign a CRL (roots and validated issuing CAs)."""
        return self.roots + self.issuing_cas

    @classmethod
    def from_pem(cls, pem: bytes, now: datetime) -> TrustAnchors:
        try:
            certificates = x509.load_pem_x509_certificates(pem) if pem.strip() else []
        except ValueError:
            raise TrustAnchorsUnavailable("The card trust anchors cannot be read.") from None
        roots = tuple(c for c in certificates if _is_self_signed_ca(c))
        if not roots:
            return cls((), (), None, time.monotonic())
        store = Store(list(roots))
        candidates = [c for c in certificates if c not in roots]
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(now)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(ca_policy=CA_POLICY, ee_policy=CA_AS_LEAF_POLICY)
            .build_client_verifier()
        )
        issuing = []
        for candidate in candidates:
            others = [c for c in candidates if c is not candidate]
            try:
                verifier.verify(candidate, others)
            except (VerificationError, *MALFORMED):
                log.warning(
                    "trust bundle certificate ignored: it does not chain to a root of the bundle",
                    extra={"subject": candidate.subject.rfc4514_string()},
                )
                continue
            issuing.append(candidate)
        return cls(roots, tuple(issuing), store, time.monotonic())

    def validate_card_chain(
        self,
        leaf: x509.Certificate,
        presented: Sequence[x509.Certificate],
        now: datetime,
    ) -> list[x509.Certificate]:
        """Path validation of a card certificate; returns the chain, leaf first.

        ``presented`` are the x5c certificates after the leaf; each must be part of the
        validated chain, in order, right after the leaf.
        """
        if self.store is None:
            raise TrustAnchorsUnavailable()
        verifier = (
            PolicyBuilder()
            .store(self.store)
            .time(now)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(ca_policy=CA_POLICY, ee_policy=CARD_POLICY)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(leaf, [*presented, *self.issuing_cas]).chain
            built = [der(c) for c in chain[1 : 1 + len(presented)]]
            if built != [der(c) for c in presented]:
                raise UntrustedCertificate()
            check_key_sizes(chain)
        except (VerificationError, *MALFORMED):
            raise UntrustedCertificate() from None
        return chain


def load_trust_anchors(path: str, now: datetime) -> TrustAnchors:
    try:
        pem = Path(path).read_bytes()
    except OSError:
        raise TrustAnchorsUnavailable() from None
    return TrustAnchors.from_pem(pem, now)


def get_trust_anchors(now: datetime, app: Flask | None = None) -> TrustAnchors:
    """The app's parsed bundle; re-read when the file changes, re-validated hourly."""
    application = app or current_app
    path = application.config["CARD_TRUST_ANCHORS"]
    try:
        stat = os.stat(path)
    except OSError:
        raise TrustAnchorsUnavailable() from None
    signature = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    cached = application.extensions.get(_EXTENSION_KEY)
    if (
        cached is not None
        and cached[0] == signature
        and time.monotonic() - cached[1].loaded_at < RELOAD_AFTER_SECONDS
    ):
        return cached[1]
    with _LOCK:
        anchors = load_trust_anchors(path, now)
        application.extensions[_EXTENSION_KEY] = (signature, anchors)
    return anchors


def reset_trust_anchors(app: Flask) -> None:
    """Forgets the cached bundle (tests, or after replacing the file in place)."""
    app.extensions.pop(_EXTENSION_KEY, None)
