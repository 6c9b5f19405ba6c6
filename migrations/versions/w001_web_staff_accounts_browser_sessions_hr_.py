"""web staff accounts browser sessions hr checks holder sign-ins

Revision ID: w001
Revises: 0001
Create Date: 2026-12-03 13:32:32.367640
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = 'w001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('web',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('browser_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('staff', 'holder', name='browser_session_kind', native_enum=False, length=10), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=True),
    sa.Column('holder_session_token', sa.Text(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_browser_sessions'))
    )
    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_browser_sessions_staff_id'), ['staff_id'], unique=False)

    op.create_table('holder_sign_ins',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('holder_session_token', sa.Text(), nullable=True),
    sa.Column('rejection', sa.String(length=40), nullable=True),
    sa.Column('claimed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holder_sign_ins'))
    )
    op.create_table('hr_checks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('challenge_id', sa.String(length=32), nullable=False),
    sa.Column('profession', sa.String(length=40), nullable=False),
    sa.Column('monitoring', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=True),
    sa.Column('holder_name', sa.String(length=200), nullable=True),
    sa.Column('subject_sealed', sa.Text(), nullable=True),
    sa.Column('subject_digest', sa.String(length=64), nullable=True),
    sa.Column('licence_status', sa.String(length=20), nullable=True),
    sa.Column('as_of', sa.String(length=40), nullable=True),
    sa.Column('verification_id', sa.String(length=64), nullable=True),
    sa.Column('receipt_sealed', sa.Text(), nullable=True),
    sa.Column('completed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hr_checks')),
    sa.UniqueConstraint('challenge_id', name=op.f('uq_hr_checks_challenge_id'))
    )
    with op.batch_alter_table('hr_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hr_checks_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_hr_checks_subject_digest'), ['subject_digest'], unique=False)

    op.create_table('staff_accounts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.Enum('staff', 'admin', name='staff_role', native_enum=False, length=10), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('setup_token_hash', sa.String(length=64), nullable=True),
    sa.Column('setup_expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_accounts')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_accounts_email')),
    sa.UniqueConstraint('setup_token_hash', name=op.f('uq_staff_accounts_setup_token_hash'))
    )
    with op.batch_alter_table('staff_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_accounts_client_id'), ['client_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('staff_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_accounts_client_id'))

    op.drop_table('staff_accounts')
    with op.batch_alter_table('hr_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hr_checks_subject_digest'))
        batch_op.drop_index(batch_op.f('ix_hr_checks_client_id'))

    op.drop_table('hr_checks')
    op.drop_table('holder_sign_ins')
    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_browser_sessions_staff_id'))

    op.drop_table('browser_sessions')
