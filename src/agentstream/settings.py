"""Configuration from environment variables (prefix ``AGENTSTREAM_``) and a ``.env`` file."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the server; defaults give the embedded, single-process setup."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    database_url: str | None = None
    database_pool_size: int = 10
    database_max_overflow: int = 10
    database_timeout_s: float = 60.0
    # PostgreSQL only: the longest a statement (or a connect) may take before it fails (503).
    database_statement_timeout_s: float = 30.0
    redis_url: str | None = None
    redis_timeout_s: float = 0.25
    redis_cooldown_s: float = 5.0
    jwt_secret: str | None = None
    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int = 30 * 24 * 3600
    default_model: str = "demo"
    demo_token_delay_ms: float = 30.0
    # Comma-separated in the environment (or a JSON list).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    auto_migrate: bool = True
    log_level: str = "INFO"
    # text on a terminal, JSON lines otherwise; "json" / "text" force one.
    log_format: Literal["auto", "json", "text"] = "auto"
    metrics: bool = True
    metrics_token: str | None = None

    rate_limit_chat: int = 60
    rate_limit_api: int = 300
    rate_limit_auth: int = 10
    rate_limit_ws_connect: int = 30

    sse_keepalive_s: float = 15.0
    ws_auth_timeout_s: float = 10.0
    ws_idle_timeout_s: float = 300.0
    ws_max_frame_bytes: int = 64 * 1024
    shutdown_grace_s: float = 5.0
    checkpoint_s: float = 1.0
    max_active_runs_per_user: int = 5
    run_events_ttl_s: float = 3600.0
    # What finished runs' events kept for resume may take per worker (oldest dropped first).
    run_events_max_mb: float = Field(default=256.0, gt=0)
    run_lease_s: float = 30.0
    # A tool call waiting for approval longer than this is denied as expired.
    approval_ttl_s: float = 86400.0
    workers: int = 1
    # The server process's garbage collector thresholds (``gc.set_threshold``); see server.py.
    gc_threshold: tuple[int, int, int] = (50_000, 20, 100)
    # Bounds how long a cached membership or agent could outlive a lost invalidation message.
    cache_ttl_s: float = 60.0

    skills_dir: Path | None = None
    memory_extraction: bool = True
    memory_limit: int = 5
    # Semantic memory (SPEC "Semantic memory"; memory/embedder.py, memory/indexer.py).
    embedding_model: str = "demo"
    embedding_timeout_s: float = 2.0
    # After a failed embedding call, searches use words alone this long before trying again.
    embedding_retry_s: float = 5.0
    embedding_batch: int = 64
    embedding_poll_s: float = 1.0
    memory_vector_scan: int = 5000
    memory_min_similarity: float = 0.3

    # MCP servers (mcp_servers/): the hosts a server's URL may name (host names or ``*.suffix``;
    # empty: none, so the server cannot be aimed at internal addresses by accident), and the
    # longest a connection, a listing or a tool call may take.
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mcp_timeout_s: float = 30.0

    # ``openai:`` models read their streams with llm/lean_openai.py; false: pydantic-ai's own.
    lean_openai: bool = True
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")

    # Tracing (observability/tracing.py): the standard OpenTelemetry variables turn it on; the
    # SDK reads the rest of them (service name, headers, sampler) from the environment itself.
    otel_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_traces_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    # Prompts, replies, instructions and tool arguments/results in spans: off by default.
    trace_content: bool = False

    @field_validator("cors_origins", "mcp_allowed_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            if value.startswith("["):
                return json.loads(value)
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'agentstream.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is SQLite."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def otlp_traces_endpoint(self) -> str | None:
        """Where spans go (OTLP/HTTP), as the OpenTelemetry spec resolves it; ``None``: off."""
        if self.otel_sdk_disabled:
            return None
        if self.otel_traces_endpoint:
            return self.otel_traces_endpoint
        if self.otel_endpoint:
            return self.otel_endpoint.rstrip("/") + "/v1/traces"
        return None

    @cached_property
    def resolved_jwt_secret(self) -> str:
        """The signing secret; generated once and kept in the data directory when unset."""
        if self.jwt_secret:
            return self.jwt_secret
        return _shared_secret(self.data_dir / "jwt_secret")


def _shared_secret(path: Path) -> str:
    """The secret in ``path``, created if missing: atomically, so that workers starting
    together all get the one that was published first, and readable only by its owner from
    the moment it exists (written to a private temporary file, fsynced, then hard-linked into
    place, which fails if another process got there first)."""
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt_secret.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secret)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_secret(path)  # another worker's secret won
        _fsync_dir(path.parent)
        return secret
    finally:
        os.unlink(temporary)


def _read_secret(path: Path) -> str:
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new JWT secret")
    return secret


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
