"""The ``agentstream`` command line: serve, migrate, create-user, create-agent, chat."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from agentstream.settings import Settings

if TYPE_CHECKING:
    from agentstream.bootstrap import DemoAccount

app = typer.Typer(help="agentstream: multi-tenant AI agents with real-time streaming.")
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")


def _with_state(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    from agentstream.app import build_state

    async def runner() -> T:
        # Not a server: it must not reap, coordinate or replay anything of the runs.
        async with build_state(settings, serving=False) as state:
            return await work(state)

    return asyncio.run(runner())


def _migrate(settings: Settings) -> None:
    from agentstream.migrations import upgrade

    upgrade(settings.resolved_database_url)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (AGENTSTREAM_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (AGENTSTREAM_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes on one port (AGENTSTREAM_WORKERS); >1 needs Redis."),
    ] = None,
) -> None:
    """Run the server (migrating the database first unless AGENTSTREAM_AUTO_MIGRATE=false)."""
    from agentstream.bootstrap import ensure_demo
    from agentstream.kit.logging import configure_logging
    from agentstream.server import WorkersNeedRedis
    from agentstream.server import serve as run_server

    settings = Settings()
    processes = workers or settings.workers
    if processes > 1 and not settings.redis_url:
        err.print(f"[red]{WorkersNeedRedis.message(processes)}[/]", soft_wrap=True)
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format)
    if settings.auto_migrate:
        _migrate(settings)
    demo = _with_state(settings, ensure_demo)
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(welcome(demo, bind_host, bind_port), soft_wrap=True, highlight=False)
    run_server(settings, bind_host, bind_port, processes)


def page_url(host: str, port: int) -> str:
    """The chat page's URL as a browser on this machine reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # bound to every address: this machine's own is one of them
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def welcome(demo: DemoAccount | None, host: str, port: int) -> str:
    """What ``serve`` prints first: where the page is, and the demo login it just created."""
    url = page_url(host, port)
    if demo is None:
        return f"Open {url} in a browser."
    login = f"{demo.email} / {demo.password}"
    return (
        f"[bold green]Created a demo account[/]: {login} with agent '{demo.agent_slug}'.\n"
        f"Open [bold]{url}[/] in a browser and sign in with {login}.\n"
        f"Or chat in a terminal: agentstream chat {demo.agent_slug}\n"
        f"API login: curl -s -X POST {url}v1/auth/login -H 'Content-Type: application/json' "
        f'-d \'{{"email":"{demo.email}","password":"{demo.password}"}}\''
    )


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    settings = Settings()
    _migrate(settings)
    console.print(f"Database is up to date: {settings.resolved_database_url.split('@')[-1]}")


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    display_name: Annotated[str | None, typer.Option()] = None,
    team_name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user with a personal team they own."""
    from agentstream.bootstrap import create_user as create

    settings = Settings()
    _migrate(settings)

    async def work(state: object) -> tuple[object, object]:
        return await create(state, email, password, display_name, team_name)  # type: ignore[arg-type]

    try:
        user_id, team_id = _with_state(settings, work)
    except Exception as exc:
        err.print(f"[red]Could not create the user:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"Created user {email} ({user_id}) with team {team_id}.")


@app.command("create-agent")
def create_agent(
    email: Annotated[str, typer.Option(help="Owner/admin whose default team gets the agent.")],
    slug: Annotated[str, typer.Option()],
    name: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option(help="e.g. demo or openai:gpt-4o-mini")] = None,
    instructions: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an agent in a user's default team."""
    from pydantic import ValidationError

    from agentstream.agents.schemas import AgentCreate
    from agentstream.bootstrap import create_agent as create
    from agentstream.kit.errors import AppError

    settings = Settings()
    _migrate(settings)
    try:
        body = AgentCreate(slug=slug, name=name or slug, model=model, instructions=instructions)
        agent_id = _with_state(settings, lambda state: create(state, email, body))
    except (ValidationError, AppError, LookupError, PermissionError) as exc:
        err.print(f"[red]Could not create the agent:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"Created agent '{slug}' ({agent_id}).")


@app.command()
def chat(
    slug: Annotated[str, typer.Argument(help="The agent's slug.")],
    url: Annotated[str, typer.Option(envvar="AGENTSTREAM_URL")] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None, typer.Option(envvar="AGENTSTREAM_TOKEN", help="Access token or API key.")
    ] = None,
    email: Annotated[str | None, typer.Option(envvar="AGENTSTREAM_EMAIL")] = None,
    password: Annotated[str | None, typer.Option(envvar="AGENTSTREAM_PASSWORD")] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message and exit.")
    ] = None,
    conversation: Annotated[
        uuid.UUID | None,
        typer.Option("--conversation", "-c", help="Continue this conversation (its id)."),
    ] = None,
) -> None:
    """Chat with an agent on a running server, streaming the reply (demo login by default).

    In the interactive session, /help lists the commands; exit, quit or Ctrl-D leave.
    """
    from agentstream.client import ChatClient, ClientError

    client = ChatClient(url, token, email, password, console)
    try:
        asyncio.run(client.repl(slug, message, conversation))
    except ClientError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
