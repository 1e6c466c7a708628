"""Sources of tools beyond skills and MCP servers: a deployment's (or a test's) own toolsets.

A source gives a run's toolset, or none; the flow combines them with the skill toolset and the
agent's MCP servers into the one toolset its ``ToolManager`` drives. Which calls need a human's
approval is the toolsets' own business, in pydantic-ai's terms: a tool declared
``requires_approval`` (``kind == 'unapproved'``), or a toolset wrapped in
``ApprovalRequiredToolset``; the flow pauses whichever call asks for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic_ai.toolsets import AbstractToolset

from agentstream.chat.deps import ChatDeps

ToolSource = Callable[[ChatDeps], Awaitable[AbstractToolset[ChatDeps] | None]]


class ToolSources:
    """The registered sources of tools (registered once at start, like models)."""

    def __init__(self) -> None:
        self._sources: list[ToolSource] = []

    def register(self, source: ToolSource) -> None:
        """Add a source; it is asked for its toolset at the start of every run."""
        self._sources.append(source)

    async def toolsets(self, deps: ChatDeps) -> list[AbstractToolset[ChatDeps]]:
        """Every source's toolset for this run (none when no source is registered)."""
        found: list[AbstractToolset[ChatDeps]] = []
        for source in self._sources:
            if (toolset := await source(deps)) is not None:
                found.append(toolset)
        return found
