"""verification permanent revocations

Revision ID: v002
Revises: v001
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from cryptography import x509

import core.db

revision: str = 'v002'
down_revision: str | Sequence[str] | None = 'v001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('verification_permanent_revocations',
    sa.Column('issuer_key', sa.String(length=64), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('crl_number', sa.String(length=49), nullable=False),
    sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('issuer_key', 'serial', name=op.f('pk_verification_permanent_revocations'))
    )
    _record_current_revocations()


def _record_current_revocations() -> None:
    """The stored CRLs' revocations (all but certificateHold) become permanent now."""
    connection = op.get_bind()
    crls = sa.table('verification_crls', sa.column('issuer_key'), sa.column('crl_number'),
                    sa.column('der'))
    permanent = sa.table('verification_permanent_revocations', sa.column('issuer_key'),
                         sa.column('serial'), sa.column('reason'), sa.column('crl_number'),
                         sa.column('recorded_at', core.db.UTCDateTime(timezone=True)))
    now = datetime.now(UTC)
    for issuer_key, crl_number, der in connection.execute(
        sa.select(crls.c.issuer_key, crls.c.crl_number, crls.c.der)
    ):
        rows = {}
        for revoked in x509.load_der_x509_crl(der):
            try:
                reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = None
            if reason is not x509.ReasonFlags.certificate_hold:
                rows[revoked.serial_number] = {
                    'issuer_key': issuer_key, 'serial': format(revoked.serial_number, 'x'),
                    'reason': reason.value if reason else None, 'crl_number': crl_number,
                    'recorded_at': now,
                }
        if rows:
            connection.execute(sa.insert(permanent), list(rows.values()))


def downgrade() -> None:
    op.drop_table('verification_permanent_revocations')
