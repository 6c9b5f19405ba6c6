"""clients: registered presentation audiences of verifier clients

Revision ID: c001
Revises: 0001
Create Date: 2026-12-03 13:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "c001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("clients",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_client_audiences",
        sa.Column("audience", sa.String(length=512), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_api_client_audiences_client_id_api_clients"),
        ),
        sa.PrimaryKeyConstraint("audience", name=op.f("pk_api_client_audiences")),
    )
    with op.batch_alter_table("api_client_audiences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_client_audiences_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_client_audiences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_client_audiences_client_id"))
    op.drop_table("api_client_audiences")
