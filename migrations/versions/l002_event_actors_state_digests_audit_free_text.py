"""event actors are names, state digests, audit free text kept out of the chain

Revision ID: l002
Revises: l001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "l002"
down_revision: str | Sequence[str] | None = "l001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("licence_events", schema=None) as batch_op:
        batch_op.alter_column(
            "actor",
            existing_type=sa.String(length=64),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("state_digest", sa.String(length=64), nullable=True))
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column(
            "actor",
            existing_type=sa.String(length=64),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("free_text", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("free_text_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("free_text_digest")
        batch_op.drop_column("free_text")
        batch_op.alter_column(
            "actor",
            existing_type=sa.String(length=200),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    with op.batch_alter_table("licence_events", schema=None) as batch_op:
        batch_op.drop_column("state_digest")
        batch_op.alter_column(
            "actor",
            existing_type=sa.String(length=200),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
