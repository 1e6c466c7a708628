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
from collections.abc import Callable
from dataclasses import dataclass

from pydantic_ai import Agent

from agentstream import tenancy
from agentstream.conversations.turns import RunIdentity
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

    run: RunIdentity
    user_message: str
    assistant_message: str


class MemoryExtractor:
    """Owns the background extraction tasks."""

    def __init__(
        self,
        sessions: SessionMaker,
        models: ModelRegistry,
        settings: Settings,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_stored = on_stored  # new memories are embedded in the background
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
            if turn.run.model != DEMO_MODEL_NAME:
                facts += await self._model_facts(
                    turn.run.model, turn.user_message, turn.assistant_message
                )
            if facts:
                await self._store(turn, facts)
                if self._on_stored is not None:
                    self._on_stored()
        except Exception:
            log.exception(
                "memory extraction failed",
                extra={"source_message_id": str(turn.run.user_message_id)},
            )

    async def _model_facts(
        self, model: str, user_message: str, assistant_message: str
    ) -> list[ExtractedFact]:
        prompt = f"User said:\n{user_message}\n\nAssistant replied:\n{assistant_message}"
        result = await self._agent.run(prompt, model=self._models.resolve(model))
        return result.output

    async def _store(self, turn: Turn, facts: list[ExtractedFact]) -> None:
        run = turn.run
        async with transaction(self._sessions) as session:
            # Whatever this user's chats with this agent can already see is not stored again.
            existing = await session.scalars(
                tenancy.memories(run, run.agent_id).with_only_columns(Memory.content)
            )
            seen = {normalise(c) for c in existing}
            for fact in facts:
                key = normalise(fact.content)
                if not key or key in seen:
                    continue
                seen.add(key)
                session.add(
                    Memory(
                        team_id=run.team_id,
                        agent_id=run.agent_id,
                        user_id=run.user_id,
                        content=fact.content,
                        importance=fact.importance,
                        source_message_id=run.user_message_id,
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
