"""A team's MCP servers: CRUD by name, the host allow-list, headers sealed at rest, the live
tool listing, and the servers a run may use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pydantic_ai.mcp import MCPToolset
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.db import SessionMaker, transaction
from agentstream.kit.errors import Conflict, McpHostNotAllowed, McpUnavailable, NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.mcp_servers.schemas import (
    McpServerCreate,
    McpServerPublic,
    McpServerUpdate,
    McpToolPublic,
    origin,
)
from agentstream.mcp_servers.secrets import HeadersUnreadable, cipher
from agentstream.mcp_servers.toolsets import (
    SEPARATOR,
    McpServerConfig,
    host_allowed,
    needs_approval,
    tls_context,
)
from agentstream.models import McpServer
from agentstream.settings import Settings
from agentstream.tenancy import Caller

log = logging.getLogger("agentstream.mcp")


def to_public(server: McpServer) -> McpServerPublic:
    """Render a server; its headers never leave the database."""
    return McpServerPublic(
        name=server.name,
        url=server.url,
        approval=server.approval,
        has_headers=server.headers_encrypted is not None,
        created_at=server.created_at,
    )


def check_host(url: str, settings: Settings) -> None:
    """422 ``mcp_host_not_allowed`` unless the URL's host is in the allow-list."""
    if not host_allowed(url, settings.mcp_allowed_hosts):
        raise McpHostNotAllowed(
            "The MCP server's host is not allowed; add it to AGENTSTREAM_MCP_ALLOWED_HOSTS.",
            details={"allowed_hosts": list(settings.mcp_allowed_hosts)},
        )


def _seal(headers: dict[str, str] | None, settings: Settings) -> str | None:
    if not headers:
        return None
    return cipher(settings.resolved_jwt_secret).seal(headers)


async def get_by_name(session: AsyncSession, caller: Caller, name: str) -> McpServer:
    """The caller's team's server with this name, or ``mcp_server_not_found``."""
    server = await session.scalar(tenancy.mcp_servers(caller).where(McpServer.name == name))
    if server is None:
        raise NotFound("mcp_server", f"No MCP server named '{name}'.")
    return server


async def create(
    session: AsyncSession, caller: Caller, body: McpServerCreate, settings: Settings
) -> McpServer:
    """Register a server; a name already taken in the team is a conflict."""
    check_host(body.url, settings)
    server = McpServer(
        team_id=caller.team_id,
        name=body.name,
        url=body.url,
        approval=body.approval,
        headers_encrypted=_seal(body.headers, settings),
    )
    session.add(server)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"An MCP server named '{body.name}' already exists.") from exc
    return server


async def update(
    session: AsyncSession, server: McpServer, body: McpServerUpdate, settings: Settings
) -> McpServer:
    """Apply the fields present in the request."""
    changes = body.model_fields_set
    if body.url is not None:
        check_host(body.url, settings)
        if origin(body.url) != origin(server.url) and "headers" not in changes:
            # The sealed headers were written for the old origin: an admin who never saw
            # them must not be able to send them somewhere else by moving the URL.
            server.headers_encrypted = None
        server.url = body.url
    if "headers" in changes:
        server.headers_encrypted = _seal(body.headers, settings)
    if body.approval is not None:
        server.approval = body.approval
    await session.flush()
    return server


async def delete(session: AsyncSession, caller: Caller, server: McpServer) -> None:
    """Remove a server, and its name from the team's agents (a server registered later under
    the same name is not theirs until they list it again)."""
    agents = await session.scalars(tenancy.agents(caller))
    for agent in agents:
        if server.name in (agent.mcp_servers or []):
            agent.mcp_servers = [n for n in agent.mcp_servers if n != server.name]
    await session.delete(server)
    await session.flush()


async def list_servers(
    session: AsyncSession, caller: Caller, params: PageParams
) -> tuple[list[McpServer], str | None, bool]:
    """A page of the team's servers, newest first."""
    rows, cursor, has_more = await paginate(session, tenancy.mcp_servers(caller), McpServer, params)
    return list(rows), cursor, has_more


async def unknown_names(session: AsyncSession, caller: Caller, names: Sequence[str]) -> list[str]:
    """The names among ``names`` that are not servers of the caller's team."""
    if not names:
        return []
    stmt = tenancy.mcp_servers(caller).where(McpServer.name.in_(set(names)))
    known = set((await session.scalars(stmt.with_only_columns(McpServer.name))).all())
    return sorted(set(names) - known)


def _config(server: McpServer, settings: Settings) -> McpServerConfig:
    headers = None
    if server.headers_encrypted is not None:
        headers = cipher(settings.resolved_jwt_secret).open(server.headers_encrypted)
    return McpServerConfig(server.name, server.url, server.approval, headers)


async def run_servers(
    session: AsyncSession, caller: Caller, names: Sequence[str], settings: Settings
) -> tuple[McpServerConfig, ...]:
    """The servers a run of an agent listing ``names`` may use: registered, on an allowed host,
    with headers this secret can open (a server failing either is left out, logged)."""
    if not names:
        return ()
    stmt = tenancy.mcp_servers(caller).where(McpServer.name.in_(set(names)))
    configs: list[McpServerConfig] = []
    for server in (await session.scalars(stmt.order_by(McpServer.name))).all():
        if not host_allowed(server.url, settings.mcp_allowed_hosts):
            log.warning("MCP server %r: host no longer allowed; left out", server.name)
            continue
        try:
            configs.append(_config(server, settings))
        except HeadersUnreadable:
            log.warning("MCP server %r: headers unreadable (JWT secret changed?)", server.name)
    return tuple(configs)


async def list_tools(
    sessions: SessionMaker, caller: Caller, name: str, settings: Settings
) -> list[McpToolPublic]:
    """The server's tools, asked of it now (502 ``mcp_unavailable`` if it does not answer).

    The row is read in a short transaction of its own: no connection is held while the MCP
    server answers.
    """
    async with transaction(sessions) as session:
        server = await get_by_name(session, caller, name)
        check_host(server.url, settings)
        try:
            config = _config(server, settings)
        except HeadersUnreadable as exc:
            raise McpUnavailable(
                "The MCP server's headers cannot be read; set them again."
            ) from exc
    timeout = settings.mcp_timeout_s
    toolset = MCPToolset[None](
        config.url,
        headers=config.headers or None,
        verify=tls_context(),
        init_timeout=timeout,
        read_timeout=timeout,
    )
    try:
        async with asyncio.timeout(timeout), toolset:
            tools = await toolset.list_tools()
    except Exception as exc:
        log.warning("MCP server %r: listing tools failed: %r", name, exc)
        raise McpUnavailable(f"The MCP server '{name}' could not be reached.") from exc
    return [
        McpToolPublic(
            name=tool.name,
            prefixed_name=f"{config.name}{SEPARATOR}{tool.name}",
            description=tool.description,
            input_schema=dict(tool.input_schema),
            needs_approval=needs_approval(config.approval, tool.name),
        )
        for tool in tools
    ]
