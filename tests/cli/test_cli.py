"""The agentstream command: help, migrate, create-user, create-agent."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentstream.cli import app
from agentstream.models import RunRecord, RunStatus
from agentstream.settings import Settings
from agentstream.state import AppState
from tests.conversations.turns import new_turns

runner = CliRunner()


@pytest.mark.parametrize("command", ["serve", "migrate", "create-user", "create-agent", "chat"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_cli_still_launches() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "create-user", "create-agent", "chat"):
        assert command in result.output


def test_migrate_create_user_and_agent(database_url: str, tmp_path: Path) -> None:
    env = {"AGENTSTREAM_DATABASE_URL": database_url, "AGENTSTREAM_DATA_DIR": str(tmp_path)}
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    created = runner.invoke(
        app, ["create-user", "--email", email, "--password", "long-enough-pw"], env=env
    )
    assert created.exit_code == 0, created.output
    assert f"Created user {email}" in created.output
    agent = runner.invoke(
        app, ["create-agent", "--email", email, "--slug", "cli-bot", "--model", "demo"], env=env
    )
    assert agent.exit_code == 0, agent.output
    assert "Created agent 'cli-bot'" in agent.output
    duplicate = runner.invoke(app, ["create-agent", "--email", email, "--slug", "cli-bot"], env=env)
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output
    unknown = runner.invoke(
        app, ["create-agent", "--email", email, "--slug", "x-bot", "--model", "Xza1:6"], env=env
    )
    assert unknown.exit_code == 1
    assert "Unknown model provider" in unknown.output
    bad_slug = runner.invoke(app, ["create-agent", "--email", email, "--slug", "Bad Slug"], env=env)
    assert bad_slug.exit_code == 1
    assert "Could not create the agent" in bad_slug.output


def test_several_workers_without_redis_refuse_to_start_and_say_what_to_set(
    tmp_path: Path,
) -> None:
    env = {"AGENTSTREAM_DATA_DIR": str(tmp_path), "AGENTSTREAM_REDIS_URL": ""}
    result = runner.invoke(app, ["serve", "--workers", "2"], env=env)
    assert result.exit_code == 2
    assert "AGENTSTREAM_REDIS_URL" in result.output
    assert not (tmp_path / "agentstream.db").exists()  # refused before touching anything


async def test_admin_commands_never_touch_a_servers_live_runs(
    client: httpx.AsyncClient, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    # A run in flight on a server (no Redis: the commands cannot tell it from a dead one's).
    (turn,) = await new_turns(client, state, 1)
    env = {
        "AGENTSTREAM_DATABASE_URL": settings.resolved_database_url,
        "AGENTSTREAM_DATA_DIR": str(tmp_path / "cli"),
        "AGENTSTREAM_REDIS_URL": "",
    }
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    for command in (
        ["migrate"],
        ["create-user", "--email", email, "--password", "long-enough-pw"],
        ["create-agent", "--email", email, "--slug", "cli-bot", "--model", "demo"],
    ):
        result = await asyncio.to_thread(runner.invoke, app, command, env=env)
        assert result.exit_code == 0, result.output
    async with state.sessions() as session:
        record = await session.get(RunRecord, turn.run_id)
    assert record is not None
    assert record.status is RunStatus.running
