"""regulator clients scoped to professions

Revision ID: c002
Revises: c001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c002"
down_revision: str | Sequence[str] | None = "c001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("professions", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("professions")
