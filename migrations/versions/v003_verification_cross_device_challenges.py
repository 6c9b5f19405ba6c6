"""verification challenges: the cross-device flow (card request nonce, consent asked,
the answer kept for the verifier)

Revision ID: v003
Revises: v002
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'v003'
down_revision: str | Sequence[str] | None = 'v002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('verification_challenges') as batch:
        batch.add_column(sa.Column('nonce', sa.String(length=64), nullable=True))
        # Existing rows asked for no consent; the default fills them, then goes.
        batch.add_column(
            sa.Column(
                'monitoring_requested', sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(sa.Column('verification', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('rejection', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('consented_to', sa.JSON(), nullable=True))
    with op.batch_alter_table('verification_challenges') as batch:
        batch.alter_column('monitoring_requested', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('verification_challenges') as batch:
        batch.drop_column('consented_to')
        batch.drop_column('rejection')
        batch.drop_column('verification')
        batch.drop_column('monitoring_requested')
        batch.drop_column('nonce')
