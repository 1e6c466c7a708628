"""An agent's MCP servers as pydantic-ai toolsets: tools named ``<server>__<tool>``, each
server guarded so that one down, slow or failing gives the model a tool error, never the run.

A server's tool list is kept per worker (``ToolListings``) for a minute: a run whose servers
were listed recently starts its first model request without connecting to them, and connects
(once for the run) at its first call. A server that cannot be reached keeps the tools it had,
and their calls answer with a tool error saying it is unavailable.

The approval setting of a server is carried on each of its tools' definitions
(``metadata["needs_approval"]``, from :func:`needs_approval`), for the approval step to read.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Self
from urllib.parse import urlsplit

import httpx2
import pydantic_core
from pydantic_ai import RunContext
from pydantic_ai.exceptions import ModelRetry, ToolFailed
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.tools import AgentDepsT, ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool, WrapperToolset

from agentstream.models import ApprovalSetting

log = logging.getLogger("agentstream.mcp")

# The most of one tool result the model (and the stored message) gets, in UTF-8 bytes.
RESULT_LIMIT = 64 * 1024
# ``<server>__<tool>``: PrefixedToolset joins prefix and name with one ``_``.
SEPARATOR = "__"
# How long a server's listed tools are used without asking it again, and how long they are
# kept for a server that cannot be reached.
LISTING_FRESH_S = 60.0
LISTING_KEPT_S = 24 * 3600.0


@dataclass(frozen=True)
class McpServerConfig:
    """What a run needs of one MCP server, read (and its headers opened) before it starts."""

    name: str
    url: str
    approval: ApprovalSetting
    headers: dict[str, str] | None = None

    @property
    def listing_key(self) -> str:
        """What the server's tool list depends on: its URL and the headers it is sent."""
        headers = sorted((self.headers or {}).items())
        return hashlib.sha256(repr((self.url, headers)).encode()).hexdigest()


@dataclass
class ToolListings:
    """Each MCP server's tools as last listed on this worker (by ``listing_key``)."""

    fresh_s: float = LISTING_FRESH_S
    kept_s: float = LISTING_KEPT_S
    _entries: dict[str, tuple[float, dict[str, ToolsetTool[Any]]]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[bool, dict[str, ToolsetTool[Any]]] | None:
        """Whether the listing is fresh, and the tools; ``None`` when none is kept."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = time.monotonic() - entry[0]
        return (age < self.fresh_s, entry[1]) if age < self.kept_s else None

    def put(self, key: str, tools: dict[str, ToolsetTool[Any]]) -> None:
        """Keep a listing just made (and forget listings too old to be used)."""
        now = time.monotonic()
        for old in [k for k, (at, _) in self._entries.items() if now - at >= self.kept_s]:
            del self._entries[old]
        self._entries[key] = (now, tools)


def needs_approval(approval: ApprovalSetting, tool_name: str) -> bool:
    """Whether a call to ``tool_name`` (the server's own name for it) must be approved first."""
    if approval == "always":
        return True
    if approval == "never":
        return False
    return tool_name in approval


def tool_needs_approval(tool_def: ToolDefinition) -> bool:
    """Whether a tool of a run's toolset is an MCP tool whose calls need approval."""
    return bool((tool_def.metadata or {}).get("needs_approval"))


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
    """Whether ``url``'s host is one of ``allowed`` (host names, or ``*.suffix`` for any
    subdomain of ``suffix``)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        return False
    for entry in allowed:
        pattern = entry.strip().lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif pattern and host == pattern:
            return True
    return False


def cap_result(result: Any, limit: int = RESULT_LIMIT) -> Any:
    """``result`` as it is when it is at most ``limit`` bytes, else its first ``limit`` bytes
    as text with a note saying so."""
    if isinstance(result, str):
        if len(result) <= limit // 4:  # at most 4 bytes a character: no need to encode
            return result
        data = result.encode("utf-8", "surrogatepass")
    else:
        try:
            data = pydantic_core.to_json(result)
        except pydantic_core.PydanticSerializationError:
            data = str(result).encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return result
    kept = data[:limit].decode("utf-8", "ignore")
    return (
        f"{kept}\n\n[Truncated: the tool's result was {len(data)} bytes; "
        f"only the first {limit} are shown.]"
    )


class _ServerDown(Exception):
    """The server could not be reached earlier in this run: no new attempt."""


@dataclass
class GuardedMcpToolset(WrapperToolset[AgentDepsT]):
    """One MCP server of a run: connected at most once for the run (at its first listing or
    call, and closed with the run), its tools marked with their approval setting, its failures
    turned into tool errors for the model."""

    server: McpServerConfig = field(kw_only=True)
    timeout_s: float = field(kw_only=True)
    listings: ToolListings = field(kw_only=True, default_factory=ToolListings)
    _entered: bool = field(default=False, init=False)
    _down: bool = field(default=False, init=False)

    async def __aenter__(self) -> Self:
        return self  # connects when first needed

    async def __aexit__(self, *args: Any) -> bool | None:
        if not self._entered:
            return None
        self._entered = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.wrapped.__aexit__(*args)
        except Exception as exc:
            log.warning("MCP server %r did not close cleanly: %r", self.server.name, exc)
        return None

    async def _connect(self) -> None:
        """Open the run's session (the caller bounds the time); one failure ends the tries."""
        if self._entered:
            return
        if self._down:
            raise _ServerDown
        try:
            await self.wrapped.__aenter__()
        except BaseException:
            self._down = True
            raise
        self._entered = True

    async def _list(self, ctx: RunContext[AgentDepsT]) -> dict[str, ToolsetTool[AgentDepsT]] | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._connect()
                tools = await self.wrapped.get_tools(ctx)
        except Exception as exc:
            self._down = True
            log.warning("MCP server %r: no tools listed: %r", self.server.name, exc)
            return None
        self.listings.put(self.server.listing_key, tools)
        return tools

    async def get_tools(self, ctx: RunContext[AgentDepsT]) -> dict[str, ToolsetTool[AgentDepsT]]:
        known = self.listings.get(self.server.listing_key)
        if known is not None and known[0]:
            tools = known[1]
        elif (listed := await self._list(ctx)) is not None:
            tools = listed
        elif known is not None:
            tools = known[1]  # unreachable now: its calls will say so
        else:
            return {}
        approval = self.server.approval
        return {
            name: replace(
                tool,
                toolset=self.wrapped,
                tool_def=replace(
                    tool.tool_def,
                    metadata={
                        **(tool.tool_def.metadata or {}),
                        "mcp_server": self.server.name,
                        "needs_approval": needs_approval(approval, name),
                    },
                ),
            )
            for name, tool in tools.items()
        }

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[AgentDepsT],
        tool: ToolsetTool[AgentDepsT],
    ) -> Any:
        server = self.server.name
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._connect()
                result = await self.wrapped.call_tool(name, tool_args, ctx, tool)
        except TimeoutError as exc:
            log.warning("MCP tool %s/%s timed out", server, name)
            raise ToolFailed(
                f"The MCP server '{server}' did not answer within {self.timeout_s:g} seconds."
            ) from exc
        except ToolFailed:
            raise  # the tool's own error, as the server reported it
        except ModelRetry as exc:  # a protocol error: a failed result, not a retry to spend
            raise ToolFailed(f"The MCP server '{server}' failed the call: {exc.message}") from exc
        except Exception as exc:
            log.warning("MCP tool %s/%s failed: %r", server, name, exc)
            raise ToolFailed(f"The MCP server '{server}' is unavailable.") from exc
        return cap_result(result)


@cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings every MCP connection shares (the HTTP client's defaults), built once.

    Each run opens its own MCP session; handing it this context (rather than letting its
    HTTP client load the CA bundle again, ~30 ms of CPU) also makes pydantic-ai build the
    Streamable HTTP transport itself, where fastmcp would otherwise try, and fail, to import
    its server package on every connection (~60 ms more).
    """
    return httpx2.create_ssl_context()


def server_toolset(
    server: McpServerConfig, timeout_s: float, listings: ToolListings
) -> AbstractToolset[AgentDepsT]:
    """One server's tools, guarded, named ``<server>__<tool>``."""
    client = MCPToolset[AgentDepsT](
        server.url,
        id=server.name,
        headers=server.headers or None,
        verify=tls_context(),
        init_timeout=timeout_s,
        # The guard's own timeout ends a call first; this only bounds the session's reads.
        read_timeout=timeout_s + 5,
        tool_error_behavior="failed",
    )
    guarded = GuardedMcpToolset[AgentDepsT](
        client, server=server, timeout_s=timeout_s, listings=listings
    )
    return guarded.prefixed(server.name + SEPARATOR[:-1])
