"""The system instructions of a run: agent instructions, skills, memories, client context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentstream.kit import jsonenc
from agentstream.skills.catalog import SkillCatalog
from agentstream.skills.tools import skills_prompt


def build_instructions(
    instructions: str,
    catalog: SkillCatalog,
    allowed_skills: frozenset[str],
    memories: Sequence[str],
    context: dict[str, Any] | None,
) -> str:
    """Assemble the sections that apply, in a stable order."""
    sections = [instructions.strip()] if instructions.strip() else []
    skills = skills_prompt(catalog, allowed_skills)
    if skills:
        sections.append(skills)
    if memories:
        lines = "\n".join(f"- {m}" for m in memories)
        sections.append(f"Relevant things you remember about this user and team:\n{lines}")
    if context:
        sections.append(
            "Context supplied by the client application for this message (JSON):\n"
            + jsonenc.dumps(context).decode()
        )
    return "\n\n".join(sections)
