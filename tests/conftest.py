"""Shared fixtures: every database test runs on SQLite and on PostgreSQL (real servers).

PostgreSQL and Redis are used when reachable; locally their tests skip with the reason,
with ``CI=true`` an unreachable server is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic_ai import models
from redis import Redis as SyncRedis
from sqlalchemy import text

from agentstream.app import build_state, create_app
from agentstream.migrations import upgrade
from agentstream.models import Base
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.tcpproxy import TcpProxy

os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")

PG_ADMIN_DSN = os.environ.get(
    "AGENTSTREAM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AGENTSTREAM_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: a real service must be there when CI runs."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)


async def _pg(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def _scratch_database(backend: str, directory: Path) -> Iterator[str]:
    """A new, migrated database of ``backend`` (dropped afterwards on PostgreSQL)."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'test.db'}"
        upgrade(url)
        yield url
        return
    name = f"agentstream_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated scratch database per backend for the whole session."""
    with _scratch_database(request.param, tmp_path_factory.mktemp("sqlite")) as url:
        yield url


@pytest.fixture(scope="module")
def own_database_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the same backend that only this module's tests use.

    For tests of jobs over every team's rows (the memory indexer): the session database is
    shared with the real servers of the e2e tests, which stay up for the session and run the
    same jobs with their own settings.
    """
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with _scratch_database(backend, tmp_path_factory.mktemp("own")) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _no_model_requests() -> Iterator[None]:
    """No test reaches a real provider: pydantic-ai refuses real model requests all session.

    FunctionModel and TestModel are not affected; provider-path tests opt back in with
    ``allow_model_requests``.
    """
    previous = models.ALLOW_MODEL_REQUESTS
    models.ALLOW_MODEL_REQUESTS = False
    yield
    models.ALLOW_MODEL_REQUESTS = previous


@pytest.fixture
def allow_model_requests() -> Iterator[None]:
    """Let real provider models (OpenAIChatModel) send requests, for this test only.

    Safe because the only provider tests talk to is the fake OpenAI server on 127.0.0.1
    (``upstream`` / ``fake_openai``): nothing leaves the machine.
    """
    models.ALLOW_MODEL_REQUESTS = True
    yield
    models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible provider on 127.0.0.1 (the only thing outside the machine)."""
    with FakeOpenAI() as fake:
        yield fake


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Test settings: fast demo model, limits off unless a test sets them."""
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "jwt_secret": "test-secret-" + "x" * 32,
        "demo_token_delay_ms": 0,
        "rate_limit_chat": 0,
        "rate_limit_api": 0,
        "rate_limit_auth": 0,
        "rate_limit_ws_connect": 0,
        "max_active_runs_per_user": 0,
        "memory_extraction": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module (or with indirect parametrisation) to change settings."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, object]) -> Settings:
    return make_settings(database_url, tmp_path, **settings_overrides)


async def _truncate(state: AppState) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with state.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[AppState]:
    """The real app state (engine, limiter, registries) over the scratch database."""
    async with build_state(settings) as app_state:
        try:
            yield app_state
        finally:
            await app_state.extractor.drain()
            await _truncate(app_state)


@pytest.fixture
def app(settings: Settings, state: AppState) -> FastAPI:
    application = create_app(settings)
    application.state.agentstream = state
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL, once Redis answers (skipped locally, a failure in CI, if not)."""
    probe = SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        probe.ping()
    except Exception as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        probe.close()
    return REDIS_URL


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    """Real Redis behind a TCP proxy the test can freeze or cut (``redis_via`` names it)."""
    target = urlsplit(redis_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy


def redis_via(proxy: TcpProxy) -> str:
    """The test Redis URL, through ``proxy``."""
    return f"redis://127.0.0.1:{proxy.port}{urlsplit(REDIS_URL).path}"
