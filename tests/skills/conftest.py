"""Skill fixtures: temporary skill folders and run dependencies, no model requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agentstream.chat.deps import ChatDeps
from agentstream.skills.catalog import SkillCatalog
from tests.factories import run_identity

MakeSkill = Callable[..., Path]


@pytest.fixture
def skills_root(tmp_path: Path) -> Path:
    root = tmp_path / "skills"
    root.mkdir()
    return root


@pytest.fixture
def make_skill(skills_root: Path) -> MakeSkill:
    """Write ``<root>/<folder>/SKILL.md`` (and extra files); returns the folder."""

    def make(
        name: str,
        description: str = "A test skill.",
        body: str = "Do the thing carefully.",
        files: dict[str, str] | None = None,
        folder: str | None = None,
        root: Path | None = None,
    ) -> Path:
        path = (root or skills_root) / (folder or name)
        path.mkdir(parents=True)
        (path / "SKILL.md").write_text(
            f"---\nname: {name}\ndescription: {description}\n---\n{body}\n", encoding="utf-8"
        )
        for relative, content in (files or {}).items():
            (path / relative).parent.mkdir(parents=True, exist_ok=True)
            (path / relative).write_text(content, encoding="utf-8")
        return path

    return make


def _deps(catalog: SkillCatalog, allowed: frozenset[str] | None = None) -> ChatDeps:
    return ChatDeps(
        run=run_identity(),
        skills=catalog,
        allowed_skills=catalog.names() if allowed is None else allowed,
    )


MakeDeps = Callable[..., ChatDeps]


@pytest.fixture
def make_deps() -> MakeDeps:
    """Run dependencies allowing ``allowed`` (default: every skill of the catalogue)."""
    return _deps
