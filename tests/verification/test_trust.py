"""The trust bundle: roots, validated issuing CAs, reloads; the card profile constants."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from seed.card_authority import USER_AUTH_POLICY_OID as SEED_POLICY_OID
from tests.fixtures.verification import Forge, problem
from verification.errors import TrustAnchorsUnavailable, UntrustedCertificate
from verification.trust import (
    USER_AUTH_POLICY_OID,
    TrustAnchors,
    get_trust_anchors,
    reset_trust_anchors,
)


def _pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def test_policy_oid_is_the_card_profiles():
    assert USER_AUTH_POLICY_OID == SEED_POLICY_OID


def test_bundle_is_split_into_roots_and_validated_issuing_cas(card_authority, forge):
    stray_root, stray_key = forge.self_signed_ca(Forge.name("Stray"))
    orphan_key = forge.key()
    orphan = Forge.certificate(  # claims an issuer that is not in the bundle
        subject=Forge.name("Orphan CA"),
        subject_key=orphan_key,
        issuer=stray_root.subject,
        issuer_key=stray_key,
        ca=True,
    )
    leafish_key = forge.key()
    leafish = Forge.certificate(
        subject=Forge.name("Not a CA"),
        subject_key=leafish_key,
        issuer=card_authority.root_certificate.subject,
        issuer_key=serialization.load_pem_private_key(
            (card_authority.directory / "root-ca.key.pem").read_bytes(), password=None
        ),
        ca=False,
    )
    bundle = _pem(
        card_authority.root_certificate, card_authority.issuing_certificate, orphan, leafish
    )
    anchors = TrustAnchors.from_pem(bundle, datetime.now(UTC))
    assert anchors.roots == (card_authority.root_certificate,)
    assert anchors.issuing_cas == (card_authority.issuing_certificate,)


def test_expired_issuing_ca_is_not_used(card_authority):
    bundle = _pem(card_authority.root_certificate, card_authority.issuing_certificate)
    later = card_authority.issuing_certificate.not_valid_after_utc + timedelta(days=1)
    assert TrustAnchors.from_pem(bundle, later).issuing_cas == ()


def test_empty_or_unreadable_bundles(card_authority):
    empty = TrustAnchors.from_pem(b"", datetime.now(UTC))
    with pytest.raises(TrustAnchorsUnavailable):
        empty.validate_card_chain(card_authority.issuing_certificate, [], datetime.now(UTC))
    with pytest.raises(TrustAnchorsUnavailable):
        TrustAnchors.from_pem(b"-----BEGIN CERTIFICATE-----\nxx\n", datetime.now(UTC))


def test_chain_validation_at_a_given_time(card_authority, issue_card):
    card = issue_card()
    anchors = TrustAnchors.from_pem(
        _pem(card_authority.root_certificate, card_authority.issuing_certificate),
        datetime.now(UTC),
    )
    now = datetime.now(UTC)
    chain = anchors.validate_card_chain(card.certificate, card.chain, now)
    assert chain == [
        card.certificate,
        card_authority.issuing_certificate,
        card_authority.root_certificate,
    ]
    with pytest.raises(UntrustedCertificate):
        anchors.validate_card_chain(card.certificate, card.chain, now - timedelta(days=2))
    with pytest.raises(UntrustedCertificate):
        anchors.validate_card_chain(card.certificate, card.chain, now + timedelta(days=6 * 366))


def test_bundle_changes_are_picked_up(
    app, verify, verifier, challenge, audience, licensed_holder, foreign_card_authority
):
    _, headers = verifier
    holder = licensed_holder()
    with app.app_context():
        first = get_trust_anchors(datetime.now(UTC))
        assert get_trust_anchors(datetime.now(UTC)) is first  # cached
    # The operator replaces the bundle with another authority's: the card is untrusted.
    path = app.config["CARD_TRUST_ANCHORS"]
    os.replace(foreign_card_authority.trust_bundle_path, path)
    problem(
        verify(headers, holder.sign(challenge(headers)["nonce"], audience)),
        401,
        "untrusted_certificate",
    )
    reset_trust_anchors(app)


def test_missing_bundle_is_unavailable_not_the_cards_fault(
    app, verify, verifier, challenge, audience, licensed_holder
):
    _, headers = verifier
    holder = licensed_holder()
    app.config["CARD_TRUST_ANCHORS"] = str(app.config["CARD_TRUST_ANCHORS"]) + ".missing"
    response = verify(headers, holder.sign(challenge(headers)["nonce"], audience))
    problem(response, 503, "unavailable")


# --- RFC 5280 end-entity rules (webpki defaults) on top of the card profile -----------------


def _issuing_key(card_authority):
    path = card_authority.directory / "issuing-ca.key.pem"
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


_AIA = x509.AuthorityInformationAccess(
    [
        x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier("http://ca.example/issuing.cer"),
        )
    ]
)
_ONLY_EXAMPLE = x509.NameConstraints(
    permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None
)
_SAN = x509.SubjectAlternativeName([x509.DirectoryName(Forge.name("Card 42"))])


@pytest.mark.parametrize(
    "case, changes",
    [
        ("no authorityKeyIdentifier", {"authority_key_id": False}),
        ("nameConstraints", {"extra": [(_ONLY_EXAMPLE, True)]}),
        ("critical AIA", {"extra": [(_AIA, True)]}),
        (
            "malformed AIA",
            {"extra": [(x509.UnrecognizedExtension(_AIA.oid, b"\x04\x03abc"), False)]},
        ),
        ("empty subject, non-critical SAN", {"subject": x509.Name([]), "extra": [(_SAN, False)]}),
        ("empty subject, no SAN", {"subject": x509.Name([])}),
    ],
)
def test_card_certificates_follow_rfc5280_end_entity_rules(card_authority, forge, case, changes):
    anchors = TrustAnchors.from_pem(
        _pem(card_authority.root_certificate, card_authority.issuing_certificate),
        datetime.now(UTC),
    )

    def card(**overrides):
        fields = {
            "subject": Forge.name("Card 42"),
            "subject_key": forge.key(),
            "issuer": card_authority.issuing_certificate.subject,
            "issuer_key": _issuing_key(card_authority),
            "ca": False,
        }
        return Forge.certificate(**{**fields, **overrides})

    chain = [card_authority.issuing_certificate]
    now = datetime.now(UTC)
    # The same certificate without the defect is a good card (the test can fail).
    anchors.validate_card_chain(card(), chain, now)
    anchors.validate_card_chain(card(extra=[(_AIA, False)]), chain, now)
    anchors.validate_card_chain(card(subject=x509.Name([]), extra=[(_SAN, True)]), chain, now)
    with pytest.raises(UntrustedCertificate):
        anchors.validate_card_chain(card(**changes), chain, now)


def test_demo_cards_carry_an_authority_key_identifier(card_authority, issue_card):
    card = issue_card()
    aki = card.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = card_authority.issuing_certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    )
    assert not aki.critical and aki.value.key_identifier == ski.value.digest
