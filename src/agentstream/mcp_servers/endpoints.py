"""``/v1/mcp-servers`` (admins): register, read, change and remove a team's MCP servers, and
list a server's tools live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from agentstream.auth.deps import AdminPrincipal
from agentstream.kit.pagination import Page, PageDep
from agentstream.mcp_servers import service
from agentstream.mcp_servers.schemas import (
    McpServerCreate,
    McpServerPublic,
    McpServerUpdate,
    McpToolPublic,
)
from agentstream.models import McpServer
from agentstream.state import SessionDep, StateDep

router = APIRouter(tags=["mcp-servers"])


async def valid_server(name: str, principal: AdminPrincipal, session: SessionDep) -> McpServer:
    """The caller's team's server named by the path, or 404 ``mcp_server_not_found``."""
    return await service.get_by_name(session, principal, name)


ServerDep = Annotated[McpServer, Depends(valid_server)]


@router.post("/v1/mcp-servers", status_code=status.HTTP_201_CREATED, response_model=McpServerPublic)
async def create_server(
    body: McpServerCreate, principal: AdminPrincipal, session: SessionDep, state: StateDep
) -> McpServerPublic:
    """Register a Streamable HTTP MCP server (its host must be allowed)."""
    server = await service.create(session, principal, body, state.settings)
    return service.to_public(server)


@router.get("/v1/mcp-servers", response_model=Page[McpServerPublic])
async def list_servers(
    principal: AdminPrincipal, session: SessionDep, page: PageDep
) -> Page[McpServerPublic]:
    """The team's MCP servers, newest first."""
    rows, cursor, has_more = await service.list_servers(session, principal, page)
    return Page(items=[service.to_public(s) for s in rows], cursor=cursor, has_more=has_more)


@router.get("/v1/mcp-servers/{name}", response_model=McpServerPublic)
async def get_server(server: ServerDep) -> McpServerPublic:
    """One MCP server (never its headers)."""
    return service.to_public(server)


@router.patch("/v1/mcp-servers/{name}", response_model=McpServerPublic)
async def update_server(
    body: McpServerUpdate, server: ServerDep, session: SessionDep, state: StateDep
) -> McpServerPublic:
    """Change a server's URL, headers or approval setting."""
    server = await service.update(session, server, body, state.settings)
    return service.to_public(server)


@router.delete("/v1/mcp-servers/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_server(server: ServerDep, principal: AdminPrincipal, session: SessionDep) -> None:
    """Remove a server (agents that listed it no longer do)."""
    await service.delete(session, principal, server)


@router.get("/v1/mcp-servers/{name}/tools", response_model=Page[McpToolPublic])
async def list_tools(name: str, principal: AdminPrincipal, state: StateDep) -> Page[McpToolPublic]:
    """The server's tools, asked of it now (502 ``mcp_unavailable`` if it cannot be reached)."""
    items = await service.list_tools(state.sessions, principal, name, state.settings)
    return Page(items=items, cursor=None, has_more=False)
