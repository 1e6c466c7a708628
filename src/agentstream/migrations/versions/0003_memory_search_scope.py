"""memory word search scoped by index to the caller's own memories

SQLite: the FTS5 table gets a ``scope`` column holding one token per readable set (the
team and user, or the team and ``shared``), so a search matches only the caller's rows
instead of ranking every tenant's and filtering after the join. PostgreSQL: the tsvector is
stored, so the rows the team index finds are checked and ranked without re-parsing them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A scope token ends in "x": no suffix of the porter stemmer ends in "x", so the token is
# indexed as written (``memory/search.py`` builds the same tokens for a query).
_SCOPE = "new.team_id || coalesce(new.user_id, 'shared') || 'x'"
_SQLITE_UP = (
    "DROP TRIGGER IF EXISTS memories_fts_insert",
    "DROP TRIGGER IF EXISTS memories_fts_update",
    "DROP TRIGGER IF EXISTS memories_fts_delete",
    "DROP TABLE IF EXISTS memories_fts",
    "CREATE VIRTUAL TABLE memories_fts USING fts5("
    "memory_id UNINDEXED, scope, content, tokenize='porter unicode61')",
    "INSERT INTO memories_fts(memory_id, scope, content) "
    "SELECT id, team_id || coalesce(user_id, 'shared') || 'x', content FROM memories",
    "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN "
    f"INSERT INTO memories_fts(memory_id, scope, content) VALUES (new.id, {_SCOPE}, new.content); "
    "END",
    "CREATE TRIGGER memories_fts_update AFTER UPDATE OF content, user_id ON memories BEGIN "
    f"UPDATE memories_fts SET content = new.content, scope = {_SCOPE} WHERE memory_id = old.id; "
    "END",
    "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN "
    "DELETE FROM memories_fts WHERE memory_id = old.id; END",
)
_POSTGRES_UP = (
    "DROP INDEX IF EXISTS ix_memories_fts",
    "ALTER TABLE memories ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', content)) STORED",
    "CREATE INDEX ix_memories_fts ON memories USING gin (search_vector)",
)


def upgrade() -> None:
    statements = _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _POSTGRES_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_memories_fts")
        op.execute("ALTER TABLE memories DROP COLUMN search_vector")
        op.execute(
            "CREATE INDEX ix_memories_fts ON memories USING gin (to_tsvector('english', content))"
        )
        return
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS memories_fts_{name}")
    op.execute("DROP TABLE IF EXISTS memories_fts")
    op.execute(
        "CREATE VIRTUAL TABLE memories_fts USING fts5("
        "memory_id UNINDEXED, content, tokenize='porter unicode61')"
    )
    op.execute("INSERT INTO memories_fts(memory_id, content) SELECT id, content FROM memories")
    op.execute(
        "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN "
        "INSERT INTO memories_fts(memory_id, content) VALUES (new.id, new.content); END"
    )
    op.execute(
        "CREATE TRIGGER memories_fts_update AFTER UPDATE OF content ON memories BEGIN "
        "UPDATE memories_fts SET content = new.content WHERE memory_id = old.id; END"
    )
    op.execute(
        "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN "
        "DELETE FROM memories_fts WHERE memory_id = old.id; END"
    )
