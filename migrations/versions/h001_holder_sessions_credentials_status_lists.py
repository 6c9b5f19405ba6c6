"""holder sessions, status lists, issued credentials

Revision ID: h001
Revises: 0001
Create Date: 2026-11-26 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = 'h001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('holder',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('holder_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('holder_code', sa.String(length=200), nullable=False),
    sa.Column('card_chain', sa.JSON(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holder_sessions'))
    )
    with op.batch_alter_table('holder_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holder_sessions_expires_at'), ['expires_at'], unique=False)

    op.create_table('holder_status_lists',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holder_status_lists'))
    )

    op.create_table('holder_credentials',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('status_list_id', sa.String(length=32), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('holder_code', sa.String(length=200), nullable=False),
    sa.Column('licence_id', sa.String(length=32), nullable=False),
    sa.Column('profession', sa.String(length=32), nullable=False),
    sa.Column('card_chain', sa.JSON(), nullable=False),
    sa.Column('issued_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['status_list_id'], ['holder_status_lists.id'], name=op.f('fk_holder_credentials_status_list_id_holder_status_lists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holder_credentials')),
    sa.UniqueConstraint('status_list_id', 'idx', name='uq_holder_credentials_list_idx')
    )
    with op.batch_alter_table('holder_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holder_credentials_holder_code'), ['holder_code'], unique=False)
        batch_op.create_index('ix_holder_credentials_list_expires', ['status_list_id', 'expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('holder_credentials', schema=None) as batch_op:
        batch_op.drop_index('ix_holder_credentials_list_expires')
        batch_op.drop_index(batch_op.f('ix_holder_credentials_holder_code'))
    op.drop_table('holder_credentials')
    op.drop_table('holder_status_lists')
    with op.batch_alter_table('holder_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holder_sessions_expires_at'))
    op.drop_table('holder_sessions')
