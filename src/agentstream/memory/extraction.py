"""Memory extraction after each completed turn, in the background.

It never delays a reply and its failures never reach chat: ``schedule`` only creates a
task. Simple explicit facts ("remember that …", "my name is …") are extracted by rule for
every model (and are all the offline demo model gets); other models also run an
extraction agent with structured output. New memories are private to the user and scoped
to the agent; a fact already stored in that scope is not stored again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass

from pydantic_ai import Agent
from sqlalchemy import select

from agentstream.db import SessionMaker, transaction
from agentstream.llm.demo import DEMO_MODEL_NAME
from agentstream.llm.registry import ModelRegistry
from agentstream.memory.schemas import ExtractedFact
from agentstream.models import Memory
from agentstream.settings import Settings

log = logging.getLogger("agentstream.memory")

_RULES = (
    (re.compile(r"\bremember(?:\s+that|:)\s+(?P<fact>[^.!?\n]+)", re.IGNORECASE), "{fact}"),
    (
        re.compile(r"\bmy name is\s+(?P<fact>[^.!?,\n]+)", re.IGNORECASE),
        "The user's name is {fact}",
    ),
)
_EXTRACTION_PROMPT = (
    "Extract durable facts about the user that are worth remembering in later conversations "
    "(preferences, names, goals, constraints). Ignore small talk and facts about the "
    "assistant. Return an empty list when there is nothing worth keeping."
)


def normalise(content: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form used for de-duplication."""
    return " ".join(re.findall(r"\w+", content.lower()))


def rule_facts(user_message: str) -> list[ExtractedFact]:
    """Facts the user stated explicitly, found without a model."""
    facts = []
    for pattern, template in _RULES:
        for match in pattern.finditer(user_message):
            fact = match["fact"].strip()
            if fact:
                facts.append(ExtractedFact(content=template.format(fact=fact)[:500]))
    return facts


@dataclass(frozen=True)
class Turn:
    """A completed exchange to learn from."""

    team_id: uuid.UUID
    agent_id: uuid.UUID
    user_id: uuid.UUID
    model: str
    user_message: str
    assistant_message: str
    source_message_id: uuid.UUID


class MemoryExtractor:
    """Owns the background extraction tasks."""

    def __init__(self, sessions: SessionMaker, models: ModelRegistry, settings: Settings) -> None:
        self._sessions = sessions
        self._models = models
        self._enabled = settings.memory_extraction
        self._tasks: set[asyncio.Task[None]] = set()
        self._agent: Agent[None, list[ExtractedFact]] = Agent(
            output_type=list[ExtractedFact], instructions=_EXTRACTION_PROMPT, defer_model_check=True
        )

    def schedule(self, turn: Turn) -> None:
        """Queue an extraction for a completed turn; returns at once."""
        if not self._enabled:
            return
        task = asyncio.create_task(self._extract(turn), name="memory-extraction")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _extract(self, turn: Turn) -> None:
        try:
            facts = rule_facts(turn.user_message)
            if turn.model != DEMO_MODEL_NAME:
                facts += await self._model_facts(
                    turn.model, turn.user_message, turn.assistant_message
                )
            if facts:
                await self._store(turn, facts)
        except Exception:
            log.exception(
                "memory extraction failed", extra={"source_message_id": str(turn.source_message_id)}
            )

    async def _model_facts(
        self, model: str, user_message: str, assistant_message: str
    ) -> list[ExtractedFact]:
        prompt = f"User said:\n{user_message}\n\nAssistant replied:\n{assistant_message}"
        result = await self._agent.run(prompt, model=self._models.resolve(model))
        return result.output

    async def _store(self, turn: Turn, facts: list[ExtractedFact]) -> None:
        async with transaction(self._sessions) as session:
            existing = await session.scalars(
                select(Memory.content).where(
                    Memory.team_id == turn.team_id,
                    Memory.user_id == turn.user_id,
                    Memory.agent_id == turn.agent_id,
                    Memory.deleted_at.is_(None),
                )
            )
            seen = {normalise(c) for c in existing}
            for fact in facts:
                key = normalise(fact.content)
                if not key or key in seen:
                    continue
                seen.add(key)
                session.add(
                    Memory(
                        team_id=turn.team_id,
                        agent_id=turn.agent_id,
                        user_id=turn.user_id,
                        content=fact.content,
                        importance=fact.importance,
                        source_message_id=turn.source_message_id,
                    )
                )

    async def drain(self) -> None:
        """Wait until every scheduled extraction has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Give running extractions a moment, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
