"""verification challenges, CRLs, access records

Revision ID: v001
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = 'v001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('verification',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('verification_challenges',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.Enum('verifier', 'holder', name='challenge_purpose', native_enum=False, length=20), nullable=False),
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=True),
    sa.Column('profession', sa.String(length=40), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_challenges')),
    sa.UniqueConstraint('nonce_hash', name=op.f('uq_verification_challenges_nonce_hash'))
    )
    with op.batch_alter_table('verification_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verification_challenges_expires_at'), ['expires_at'], unique=False)

    op.create_table('verification_crls',
    sa.Column('issuer_key', sa.String(length=64), nullable=False),
    sa.Column('issuer_name', sa.String(length=1000), nullable=False),
    sa.Column('crl_number', sa.String(length=49), nullable=False),
    sa.Column('this_update', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_update', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.Column('revoked_count', sa.Integer(), nullable=False),
    sa.Column('imported_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('issuer_key', name=op.f('pk_verification_crls'))
    )

    op.create_table('verification_access_records',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('holder_code', sa.String(length=200), nullable=False),
    sa.Column('verifier_client_id', sa.String(length=32), nullable=False),
    sa.Column('verifier_name', sa.String(length=200), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('profession', sa.String(length=40), nullable=True),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('verification_id', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_access_records')),
    sa.UniqueConstraint('verification_id', name=op.f('uq_verification_access_records_verification_id'))
    )
    with op.batch_alter_table('verification_access_records', schema=None) as batch_op:
        batch_op.create_index('ix_verification_access_records_holder_at', ['holder_code', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('verification_access_records', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_access_records_holder_at')

    op.drop_table('verification_access_records')
    op.drop_table('verification_crls')
    with op.batch_alter_table('verification_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verification_challenges_expires_at'))

    op.drop_table('verification_challenges')
