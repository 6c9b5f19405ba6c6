"""v002: the revocations of the CRLs already stored become permanent on upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import text

from core import db
from tests.quality.schema_check import scratch_database


def _crl_der(key) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Issuing CA")])
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now)
        .next_update(now + timedelta(hours=24))
        .add_extension(x509.CRLNumber(7), critical=False)
    )
    for serial, reason in (
        (0x11, x509.ReasonFlags.certificate_hold),
        (0x12, x509.ReasonFlags.key_compromise),
        (0x13, None),
    ):
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_upgrade_keeps_stored_revocations_for_good(card_key_pool):
    with scratch_database() as url:
        config = db.alembic_config(url)
        command.upgrade(config, "v001")
        engine = db.make_engine(url)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO verification_crls (issuer_key, issuer_name, crl_number, "
                    "this_update, next_update, sha256, der, revoked_count, imported_at) "
                    "VALUES ('k1', 'CN=Issuing CA', :number, :now, :now, 'x', :der, 3, :now)"
                ),
                {"number": "7".zfill(49), "now": now, "der": _crl_der(card_key_pool.key(0))},
            )
        command.upgrade(config, "heads")
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT issuer_key, serial, reason, crl_number "
                    "FROM verification_permanent_revocations ORDER BY serial"
                )
            ).all()
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("k1", "12", "keyCompromise", "7".zfill(49)),
        ("k1", "13", None, "7".zfill(49)),
    ]
