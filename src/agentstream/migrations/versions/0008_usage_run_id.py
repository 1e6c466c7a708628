"""usage_logs.run_id: one usage row per run

A plain ``ALTER TABLE ADD COLUMN`` and a unique index on both databases (no batch mode: on
SQLite it would rebuild the table and drop the rollup trigger of 0004).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage_logs", sa.Column("run_id", sa.Uuid(), nullable=True))
    op.create_index("ix_usage_logs_run_id", "usage_logs", ["run_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_usage_logs_run_id", table_name="usage_logs")
    op.drop_column("usage_logs", "run_id")  # SQLite >= 3.35 drops a column in place
