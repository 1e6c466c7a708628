"""The agent's skill tools; they read the tenant's allowed skills from ``ctx.deps``."""

from __future__ import annotations

from pydantic_ai import RunContext
from pydantic_ai.toolsets import FunctionToolset

from agentstream.chat.deps import ChatDeps
from agentstream.skills.catalog import SkillCatalog, SkillError


def _unknown(name: str, deps: ChatDeps) -> str:
    usable = sorted(n for n in deps.allowed_skills if deps.skills.get(n) is not None)
    return f"Unknown skill '{name}'. Available skills: {', '.join(usable) or 'none'}."


async def load_skill(ctx: RunContext[ChatDeps], skill_name: str) -> str:
    """Load a skill's full instructions and the list of its reference files."""
    deps = ctx.deps
    skill = deps.skills.get(skill_name) if skill_name in deps.allowed_skills else None
    if skill is None:
        return _unknown(skill_name, deps)
    files = deps.skills.reference_files(skill_name)
    listing = "\n".join(f"- {f}" for f in files) or "(none)"
    return (
        f"# Skill: {skill.name}\n\n{skill.body}\n\n"
        f"Reference files (read with read_skill_file):\n{listing}"
    )


async def read_skill_file(ctx: RunContext[ChatDeps], skill_name: str, path: str) -> str:
    """Read one reference file of a skill, by its path relative to the skill folder."""
    deps = ctx.deps
    if skill_name not in deps.allowed_skills or deps.skills.get(skill_name) is None:
        return _unknown(skill_name, deps)
    try:
        return deps.skills.read_file(skill_name, path)
    except SkillError as exc:
        files = ", ".join(deps.skills.reference_files(skill_name)) or "none"
        return f"{exc} Files of this skill: {files}."


def build_skill_toolset() -> FunctionToolset[ChatDeps]:
    """``load_skill`` and ``read_skill_file`` as a toolset."""
    return FunctionToolset[ChatDeps]([load_skill, read_skill_file])


def skills_prompt(catalog: SkillCatalog, allowed: frozenset[str]) -> str:
    """The catalogue section of the instructions: only names and descriptions."""
    skills = [s for s in catalog.all() if s.name in allowed]
    if not skills:
        return ""
    lines = "\n".join(f"- {s.name}: {s.description}" for s in skills)
    return (
        "You have skills. Call load_skill(skill_name) to read a skill's instructions before "
        "using it, and read_skill_file(skill_name, path) for its reference files.\n"
        f"Available skills:\n{lines}"
    )
