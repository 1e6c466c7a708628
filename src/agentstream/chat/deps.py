"""The dependencies every agent run receives: the tenant, never taken from model output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentstream.conversations.turns import RunIdentity
from agentstream.skills.catalog import SkillCatalog


@dataclass(frozen=True)
class ChatDeps:
    """Identity and resources of one run; tools read the tenant from here."""

    run: RunIdentity  # whose run: team, user, agent, conversation
    skills: SkillCatalog
    allowed_skills: frozenset[str]
    context: dict[str, Any] = field(default_factory=dict)
