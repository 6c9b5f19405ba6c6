"""monitoring subscriptions webhooks event outbox delivery log

Revision ID: m001
Revises: 0001
Create Date: 2026-12-03 13:04:24.049413
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = 'm001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('monitoring',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('monitoring_subscriptions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('verifier_client_id', sa.String(length=32), nullable=False),
    sa.Column('verifier_name', sa.String(length=200), nullable=False),
    sa.Column('holder_code', sa.String(length=200), nullable=False),
    sa.Column('subject_digest', sa.String(length=64), nullable=False),
    sa.Column('licence_id', sa.String(length=32), nullable=False),
    sa.Column('profession', sa.String(length=32), nullable=False),
    sa.Column('active_slot', sa.Integer(), nullable=True),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_subscriptions'))
    )
    with op.batch_alter_table('monitoring_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_monitoring_subscriptions_holder', ['holder_code'], unique=False)
        batch_op.create_index('ix_monitoring_subscriptions_licence_slot', ['licence_id', 'active_slot'], unique=False)
        batch_op.create_index('ix_monitoring_subscriptions_verifier_digest', ['verifier_client_id', 'subject_digest'], unique=False)
        batch_op.create_index('uq_monitoring_subscriptions_running', ['verifier_client_id', 'licence_id', 'active_slot'], unique=True)

    op.create_table('monitoring_webhooks',
    sa.Column('verifier_client_id', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('verifier_client_id', name=op.f('pk_monitoring_webhooks'))
    )
    op.create_table('monitoring_events',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('jti', sa.String(length=32), nullable=False),
    sa.Column('subscription_id', sa.String(length=32), nullable=False),
    sa.Column('verifier_client_id', sa.String(length=32), nullable=False),
    sa.Column('event_type', sa.Enum('status-changed', 'monitoring-ended', name='monitoring_event_type', native_enum=False, length=20), nullable=False),
    sa.Column('profession', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('suspended_until', sa.Date(), nullable=True),
    sa.Column('effective_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lapse_key', sa.String(length=80), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('pending', 'delivered', 'expired', name='monitoring_delivery_state', native_enum=False, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['monitoring_subscriptions.id'], name=op.f('fk_monitoring_events_subscription_id_monitoring_subscriptions')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_monitoring_events')),
    sa.UniqueConstraint('jti', name=op.f('uq_monitoring_events_jti')),
    sa.UniqueConstraint('lapse_key', name=op.f('uq_monitoring_events_lapse_key'))
    )
    with op.batch_alter_table('monitoring_events', schema=None) as batch_op:
        batch_op.create_index('ix_monitoring_events_state_next_attempt', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitoring_events_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index('ix_monitoring_events_verifier_seq', ['verifier_client_id', 'seq'], unique=False)

    op.create_table('monitoring_delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_seq', sa.Integer(), nullable=False),
    sa.Column('verifier_client_id', sa.String(length=32), nullable=False),
    sa.Column('jti', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['event_seq'], ['monitoring_events.seq'], name=op.f('fk_monitoring_delivery_attempts_event_seq_monitoring_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_delivery_attempts'))
    )
    with op.batch_alter_table('monitoring_delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitoring_delivery_attempts_event_seq'), ['event_seq'], unique=False)
        batch_op.create_index('ix_monitoring_delivery_attempts_verifier_id', ['verifier_client_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('monitoring_delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_monitoring_delivery_attempts_verifier_id')
        batch_op.drop_index(batch_op.f('ix_monitoring_delivery_attempts_event_seq'))

    op.drop_table('monitoring_delivery_attempts')
    with op.batch_alter_table('monitoring_events', schema=None) as batch_op:
        batch_op.drop_index('ix_monitoring_events_verifier_seq')
        batch_op.drop_index(batch_op.f('ix_monitoring_events_subscription_id'))
        batch_op.drop_index('ix_monitoring_events_state_next_attempt')

    op.drop_table('monitoring_events')
    op.drop_table('monitoring_webhooks')
    with op.batch_alter_table('monitoring_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('uq_monitoring_subscriptions_running')
        batch_op.drop_index('ix_monitoring_subscriptions_verifier_digest')
        batch_op.drop_index('ix_monitoring_subscriptions_licence_slot')
        batch_op.drop_index('ix_monitoring_subscriptions_holder')

    op.drop_table('monitoring_subscriptions')
