"""The demo card authority: JPKI user-authentication profile, lifecycle and CRLs."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from seed.card_authority import (
    USER_AUTH_POLICY_OID,
    CardAuthority,
    CardAuthorityCorrupt,
    CardAuthorityMissing,
    InvalidCardTransition,
    UnknownCard,
    add_years,
    parse_serial,
    serial_hex,
)

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


# -- helpers -----------------------------------------------------------------------


def _card_profile_verifier(roots: list[x509.Certificate], at: datetime):
    """Chain validation as the verification pipeline does it: cryptography's verifier
    with an end-entity policy for the card profile (no EKU or SAN in JPKI cards)."""

    def key_usage(_policy, _cert, ku: x509.KeyUsage) -> None:
        if not ku.digital_signature:
            raise ValueError("digitalSignature required")

    def not_a_ca(_policy, _cert, bc: x509.BasicConstraints) -> None:
        if bc.ca:
            raise ValueError("not a CA")

    def user_auth_policy(_policy, _cert, policies: x509.CertificatePolicies) -> None:
        if USER_AUTH_POLICY_OID not in [p.policy_identifier for p in policies]:
            raise ValueError("user-authentication policy required")

    ee_policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.KeyUsage, Criticality.CRITICAL, key_usage)
        .require_present(x509.BasicConstraints, Criticality.CRITICAL, not_a_ca)
        .require_present(x509.CertificatePolicies, Criticality.AGNOSTIC, user_auth_policy)
    )
    return (
        PolicyBuilder()
        .store(Store(roots))
        .time(at)
        .max_chain_depth(2)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )


def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def _assert_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    issuer.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
    )


# -- the CA hierarchy --------------------------------------------------------------


def test_root_and_issuing_ca_profile(card_authority):
    root, issuing = card_authority.root_certificate, card_authority.issuing_certificate

    for cert in (root, issuing):
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)
        assert cert.public_key().key_size == 2048
        ku = _ext(cert, x509.KeyUsage)
        assert ku.critical
        assert ku.value.key_cert_sign and ku.value.crl_sign
        assert not ku.value.digital_signature
        assert _ext(cert, x509.BasicConstraints).critical
        assert _ext(cert, x509.BasicConstraints).value.ca is True
    assert _ext(issuing, x509.BasicConstraints).value.path_length == 0

    assert root.subject == root.issuer
    _assert_signed_by(root, root)
    assert issuing.issuer == root.subject
    _assert_signed_by(issuing, root)
    assert (
        _ext(issuing, x509.AuthorityKeyIdentifier).value.key_identifier
        == _ext(root, x509.SubjectKeyIdentifier).value.digest
    )


def test_init_writes_trust_bundle_and_private_keys_0600(card_authority, app):
    bundle = x509.load_pem_x509_certificates(card_authority.trust_bundle_path.read_bytes())
    assert bundle == [card_authority.root_certificate, card_authority.issuing_certificate]
    # The app's default trust anchors are this bundle.
    assert str(card_authority.trust_bundle_path) == app.config["CARD_TRUST_ANCHORS"]
    for name in (CardAuthority.ROOT_KEY, CardAuthority.ISSUING_KEY):
        mode = stat.S_IMODE((card_authority.directory / name).stat().st_mode)
        assert mode == 0o600, name


def test_init_is_idempotent_and_keeps_state(tmp_path, card_key_pool):
    directory = tmp_path / "ca"
    first = CardAuthority.init(directory)
    cert = first.issue_card_certificate(card_key_pool.key(0).public_key())
    first.make_crl()

    again = CardAuthority.init(directory)

    assert again.root_certificate == first.root_certificate
    assert again.issuing_certificate == first.issuing_certificate
    assert again.card(cert.serial_number).status == "valid"
    assert again.make_crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2


def test_load_without_init_says_so(tmp_path):
    with pytest.raises(CardAuthorityMissing) as excinfo:
        CardAuthority.load(tmp_path / "nothing")
    assert "card-authority init" in excinfo.value.detail


def test_init_refuses_a_half_deleted_directory(tmp_path):
    directory = tmp_path / "ca"
    CardAuthority.init(directory)
    (directory / CardAuthority.ROOT_KEY).unlink()
    with pytest.raises(CardAuthorityCorrupt):
        CardAuthority.init(directory)


# -- card certificates -------------------------------------------------------------


def test_card_certificate_matches_the_jpki_user_authentication_profile(
    card_authority, card_key_pool
):
    key = card_key_pool.key(0)
    cert = card_authority.issue_card_certificate(key.public_key(), now=NOW)
    issuing = card_authority.issuing_certificate

    # Subject: country and an opaque CN, nothing else (no personal data).
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(cn) >= 16 and serial_hex(cert.serial_number) not in cn.lower()
    assert cert.issuer == issuing.subject

    # Key and signature.
    assert cert.public_key() == key.public_key()
    assert cert.public_key().key_size == 2048
    _assert_signed_by(cert, issuing)
    assert 0 < cert.serial_number < 2**159

    # Validity: five years from issuance.
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == add_years(NOW, 5)

    # Extensions: exactly these, with these criticalities.
    extensions = {ext.oid: ext for ext in cert.extensions}
    assert set(extensions) == {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
    bc = extensions[ExtensionOID.BASIC_CONSTRAINTS]
    assert bc.critical and bc.value.ca is False and bc.value.path_length is None
    ku = extensions[ExtensionOID.KEY_USAGE]
    assert ku.critical
    assert ku.value == x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    policies = extensions[ExtensionOID.CERTIFICATE_POLICIES].value
    assert [p.policy_identifier for p in policies] == [USER_AUTH_POLICY_OID]
    assert extensions[
        ExtensionOID.SUBJECT_KEY_IDENTIFIER
    ].value == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert (
        extensions[ExtensionOID.AUTHORITY_KEY_IDENTIFIER].value.key_identifier
        == _ext(issuing, x509.SubjectKeyIdentifier).value.digest
    )


def test_card_serials_are_random_and_recorded(card_authority, card_key_pool):
    certs = [
        card_authority.issue_card_certificate(card_key_pool.key(i).public_key()) for i in range(3)
    ]
    serials = {c.serial_number for c in certs}
    assert len(serials) == 3
    assert {r.serial for r in card_authority.cards()} == serials
    for cert in certs:
        assert card_authority.certificate(cert.serial_number) == cert
        assert card_authority.card(cert.serial_number).status == "valid"


def test_card_chain_validates_to_the_root_with_cryptography_verifier(
    card_authority, foreign_card_authority, card_key_pool
):
    cert = card_authority.issue_card_certificate(card_key_pool.key(0).public_key(), now=NOW)
    verifier = _card_profile_verifier([card_authority.root_certificate], NOW + timedelta(days=1))

    verified = verifier.verify(cert, card_authority.chain)
    assert verified.chain == [
        cert,
        card_authority.issuing_certificate,
        card_authority.root_certificate,
    ]

    # Expired after five years.
    later = _card_profile_verifier(
        [card_authority.root_certificate], add_years(NOW, 5) + timedelta(seconds=1)
    )
    with pytest.raises(VerificationError):
        later.verify(cert, card_authority.chain)

    # Another authority's card does not chain to this root.
    foreign = foreign_card_authority.issue_card_certificate(
        card_key_pool.key(1).public_key(), now=NOW
    )
    with pytest.raises(VerificationError):
        verifier.verify(foreign, foreign_card_authority.chain)


def test_issuing_ca_cannot_pass_as_a_card(card_authority):
    verifier = _card_profile_verifier([card_authority.root_certificate], NOW)
    with pytest.raises(VerificationError):
        verifier.verify(card_authority.issuing_certificate, [])


def test_small_or_non_rsa_keys_are_refused(card_authority):
    from cryptography.hazmat.primitives.asymmetric import ec

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError):
        card_authority.issue_card_certificate(small.public_key())
    with pytest.raises(ValueError):
        card_authority.issue_card_certificate(ec.generate_private_key(ec.SECP256R1()).public_key())


# -- lifecycle and CRLs ------------------------------------------------------------


def _crl_entry(crl: x509.CertificateRevocationList, serial: int):
    return crl.get_revoked_certificate_by_serial_number(serial)


def _reason(entry) -> x509.ReasonFlags:
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _crl_number(crl) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_crl_is_signed_by_the_issuing_ca_with_times_and_aki(card_authority):
    crl = card_authority.make_crl(now=NOW, validity=timedelta(hours=6))

    issuing = card_authority.issuing_certificate
    assert crl.is_signature_valid(issuing.public_key())
    assert not crl.is_signature_valid(card_authority.root_certificate.public_key())
    assert crl.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert crl.issuer == issuing.subject
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + timedelta(hours=6)
    assert (
        crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        == _ext(issuing, x509.SubjectKeyIdentifier).value.digest
    )
    # A full CRL: no delta indicator; the newest one is also saved as DER.
    assert not any(ext.oid == ExtensionOID.DELTA_CRL_INDICATOR for ext in crl.extensions)
    assert x509.load_der_x509_crl(card_authority.crl_path.read_bytes()) == crl


def test_crl_number_strictly_increases_and_survives_reload(card_authority):
    numbers = [_crl_number(card_authority.make_crl()) for _ in range(3)]
    reloaded = CardAuthority.load(card_authority.directory)
    numbers.append(_crl_number(reloaded.make_crl()))
    assert numbers == [1, 2, 3, 4]


def test_hold_resume_and_revoke_reason_codes(card_authority, card_key_pool):
    lost, compromised, fine = (
        card_authority.issue_card_certificate(card_key_pool.key(i).public_key()).serial_number
        for i in range(3)
    )
    card_authority.report_lost(lost, now=NOW)
    card_authority.revoke(compromised, now=NOW)

    crl = card_authority.make_crl(now=NOW + timedelta(minutes=1))
    assert _reason(_crl_entry(crl, lost)) == x509.ReasonFlags.certificate_hold
    assert _reason(_crl_entry(crl, compromised)) == x509.ReasonFlags.key_compromise
    assert _crl_entry(crl, lost).revocation_date_utc == NOW
    assert _crl_entry(crl, fine) is None
    assert card_authority.card(lost).status == "on_hold"

    # Found again: simply absent from the next full CRL.
    card_authority.resume(lost)
    crl = card_authority.make_crl(now=NOW + timedelta(minutes=2))
    assert _crl_entry(crl, lost) is None
    assert _crl_entry(crl, compromised) is not None
    assert card_authority.card(lost).status == "valid"


def test_held_card_can_then_be_revoked_for_good(card_authority, card_key_pool):
    serial = card_authority.issue_card_certificate(card_key_pool.key(0).public_key()).serial_number
    card_authority.report_lost(serial)
    card_authority.report_lost(serial)  # a second call to the 24/7 line changes nothing
    card_authority.revoke(serial, x509.ReasonFlags.cessation_of_operation)

    assert _reason(_crl_entry(card_authority.make_crl(), serial)) == (
        x509.ReasonFlags.cessation_of_operation
    )
    with pytest.raises(InvalidCardTransition):
        card_authority.resume(serial)
    with pytest.raises(InvalidCardTransition):
        card_authority.report_lost(serial)
    with pytest.raises(InvalidCardTransition):
        card_authority.revoke(serial)


def test_illegal_requests(card_authority, card_key_pool):
    serial = card_authority.issue_card_certificate(card_key_pool.key(0).public_key()).serial_number
    with pytest.raises(InvalidCardTransition):
        card_authority.resume(serial)  # not on hold
    with pytest.raises(ValueError):
        card_authority.revoke(serial, x509.ReasonFlags.certificate_hold)  # report_lost's job
    for call in (card_authority.report_lost, card_authority.resume, card_authority.revoke):
        with pytest.raises(UnknownCard):
            call(serial + 1)


def test_reissue_supersedes_the_old_card(card_authority, card_key_pool):
    old = card_authority.issue_card_certificate(card_key_pool.key(0).public_key())
    card_authority.report_lost(old.serial_number)

    new = card_authority.reissue(old.serial_number, card_key_pool.key(1).public_key())

    assert new.serial_number != old.serial_number
    assert card_authority.card(new.serial_number).status == "valid"
    crl = card_authority.make_crl()
    assert _reason(_crl_entry(crl, old.serial_number)) == x509.ReasonFlags.superseded
    assert _crl_entry(crl, new.serial_number) is None
    with pytest.raises(InvalidCardTransition):
        card_authority.reissue(old.serial_number, card_key_pool.key(2).public_key())


def test_batch_writes_state_once_and_other_instances_see_it(card_authority, card_key_pool):
    with card_authority.batch():
        serials = [
            card_authority.issue_card_certificate(card_key_pool.key(i).public_key()).serial_number
            for i in range(3)
        ]
        card_authority.report_lost(serials[0])
    other = CardAuthority.load(card_authority.directory)
    assert [other.card(s).status for s in serials] == ["on_hold", "valid", "valid"]
    state = json.loads((card_authority.directory / CardAuthority.STATE).read_text())
    assert set(state["cards"]) == {serial_hex(s) for s in serials}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1f2e", 0x1F2E), ("0x1F2E", 0x1F2E), ("1f:2e", 0x1F2E), (" 00ff ", 0xFF)],
)
def test_parse_serial(text, value):
    assert parse_serial(text) == value
    assert serial_hex(value) == format(value, "x")


@pytest.mark.parametrize("text", ["", "xyz", "0", "-1"])
def test_parse_serial_rejects(text):
    with pytest.raises(ValueError):
        parse_serial(text)
