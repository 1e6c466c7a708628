"""TEMPORARY interface stub — replaced by the memory feature."""

from __future__ import annotations

import uuid

from agentstream.db import SessionMaker
from agentstream.llm.registry import ModelRegistry
from agentstream.settings import Settings


class MemoryExtractor:
    """Extracts memories after each turn, in the background."""

    def __init__(self, sessions: SessionMaker, models: ModelRegistry, settings: Settings) -> None:
        self.sessions = sessions

    def schedule(
        self,
        *,
        team_id: uuid.UUID,
        agent_id: uuid.UUID,
        user_id: uuid.UUID,
        model: str,
        user_message: str,
        assistant_message: str,
        source_message_id: uuid.UUID,
    ) -> None:
        """Queue an extraction; never blocks."""

    async def drain(self) -> None:
        """Wait for queued extractions (tests)."""

    async def aclose(self) -> None:
        """Finish or cancel pending extractions."""
