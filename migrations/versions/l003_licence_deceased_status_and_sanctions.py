"""licence events record sanctions (reprimands); the deceased status

Revision ID: l003
Revises: l002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "l003"
down_revision: str | Sequence[str] | None = "l002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ``deceased`` needs no schema change: statuses are unconstrained VARCHAR values.
    with op.batch_alter_table("licence_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "sanction",
                sa.Enum("reprimand", name="sanction", native_enum=False, length=16),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("sanction_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("licence_events", schema=None) as batch_op:
        batch_op.drop_column("sanction_on")
        batch_op.drop_column("sanction")
