"""one running run per conversation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00

A conversation runs one turn at a time on every worker: a unique index over the running runs
of each conversation (partial, so finished and queued runs are not in it). Before it exists,
a database may already hold two running runs of one conversation (two messages at once, before
this rule); all but the newest are marked interrupted, as the reaper would, so the index can
be built and the server starts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.execute(
        """
        UPDATE runs SET status = 'interrupted', finished_at = CURRENT_TIMESTAMP
        WHERE status = 'running' AND EXISTS (
            SELECT 1 FROM runs AS newer
            WHERE newer.conversation_id = runs.conversation_id
              AND newer.status = 'running'
              AND (newer.created_at > runs.created_at
                   OR (newer.created_at = runs.created_at AND newer.id > runs.id))
        )
        """
    )
    op.create_index(
        "ux_runs_conversation_running",
        "runs",
        ["conversation_id"],
        unique=True,
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )


def downgrade() -> None:
    op.drop_index("ux_runs_conversation_running", table_name="runs")
