"""verification: indexes for housekeeping (access records by time) and for counting a
client's outstanding challenges

Revision ID: v004
Revises: v003
Create Date: 2026-12-03 14:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'v004'
down_revision: str | Sequence[str] | None = 'v003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_verification_access_records_at', 'verification_access_records', ['at'], unique=False
    )
    op.create_index(
        'ix_verification_challenges_client_expires',
        'verification_challenges',
        ['client_id', 'expires_at'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_verification_challenges_client_expires', table_name='verification_challenges')
    op.drop_index('ix_verification_access_records_at', table_name='verification_access_records')
