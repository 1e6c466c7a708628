"""memory embeddings: vector, model and dimensions per memory

PostgreSQL: the column is pgvector's ``vector`` when that extension is installed (or can be
installed here), else ``bytea`` (float32, as on SQLite; see ``models.memory.Vector``); the
server detects which at start (``memory/vectors.py``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _pgvector() -> bool:
    """Whether pgvector is installed in this database, installing it if it is available."""
    bind = op.get_bind()
    available = bind.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
    if available:
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
        except sa.exc.DBAPIError:
            pass  # not allowed to install it: real[] it is
    return bool(bind.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")))


def upgrade() -> None:
    pgvector = op.get_bind().dialect.name == "postgresql" and _pgvector()
    with op.batch_alter_table("memories", schema=None) as batch_op:
        if not pgvector:
            batch_op.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("embedding_model", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("embedding_dims", sa.Integer(), nullable=True))
        batch_op.create_index("ix_memories_team_created", ["team_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_memories_embedding", ["embedding_model", "embedding_dims"], unique=False
        )
    if pgvector:
        # No fixed dimension (the model may change), hence no ANN index: an exact scan of
        # the caller's own rows, in the database.
        op.execute("ALTER TABLE memories ADD COLUMN embedding vector")


def downgrade() -> None:
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index("ix_memories_embedding")
        batch_op.drop_index("ix_memories_team_created")
        batch_op.drop_column("embedding_dims")
        batch_op.drop_column("embedding_model")
        batch_op.drop_column("embedding")
