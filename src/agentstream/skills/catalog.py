"""Skills: folders with a ``SKILL.md`` (front matter ``name``/``description``, body) and files."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import frontmatter

log = logging.getLogger("agentstream.skills")
BUILTIN_DIR = Path(__file__).parent / "builtin"
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class SkillError(Exception):
    """A skill or one of its files cannot be given out."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    body: str
    root: Path


def _load_skill(folder: Path) -> Skill | None:
    path = folder / "SKILL.md"
    try:
        post = frontmatter.load(str(path))
    except Exception as exc:
        log.warning("skipping malformed skill %s: %s", folder, exc)
        return None
    name, description = post.metadata.get("name"), post.metadata.get("description")
    if not isinstance(name, str) or not _NAME.match(name) or not isinstance(description, str):
        log.warning("skipping skill %s: front matter needs a slug name and a description", folder)
        return None
    return Skill(
        name=name, description=description.strip(), body=post.content.strip(), root=folder.resolve()
    )


def _scan(directory: Path) -> dict[str, Skill]:
    skills: dict[str, Skill] = {}
    if not directory.is_dir():
        log.warning("skills directory %s does not exist", directory)
        return skills
    for folder in sorted(p for p in directory.iterdir() if (p / "SKILL.md").is_file()):
        skill = _load_skill(folder)
        if skill is not None:
            skills[skill.name] = skill
    return skills


class SkillCatalog:
    """The skills available in this deployment: built-ins plus an optional directory."""

    def __init__(self, skills: dict[str, Skill]) -> None:
        self._skills = dict(sorted(skills.items()))
        self._names = frozenset(self._skills)

    @classmethod
    def load(cls, extra_dir: Path | None = None) -> SkillCatalog:
        """Built-in skills, overridden by same-named skills of ``extra_dir``."""
        skills = _scan(BUILTIN_DIR)
        if extra_dir is not None:
            skills.update(_scan(extra_dir))
        return cls(skills)

    def all(self) -> list[Skill]:
        """Every skill, sorted by name."""
        return list(self._skills.values())

    def get(self, name: str) -> Skill | None:
        """The skill called ``name``."""
        return self._skills.get(name)

    def names(self) -> frozenset[str]:
        """Every skill name."""
        return self._names

    def reference_files(self, name: str) -> list[str]:
        """Relative paths of a skill's files other than SKILL.md."""
        skill = self._require(name)
        return sorted(
            str(p.relative_to(skill.root))
            for p in skill.root.rglob("*")
            if p.is_file() and p.name != "SKILL.md" and p.resolve().is_relative_to(skill.root)
        )

    def read_file(self, name: str, relative_path: str) -> str:
        """A file of the skill; no path may leave the skill's folder."""
        skill = self._require(name)
        candidate = Path(relative_path)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise SkillError(f"'{relative_path}' is outside the skill '{name}'.")
        target = (skill.root / candidate).resolve()
        if not target.is_relative_to(skill.root):
            raise SkillError(f"'{relative_path}' is outside the skill '{name}'.")
        if not target.is_file():
            raise SkillError(f"The skill '{name}' has no file '{relative_path}'.")
        return target.read_text(encoding="utf-8", errors="replace")

    def _require(self, name: str) -> Skill:
        skill = self._skills.get(name)
        if skill is None:
            raise SkillError(f"Unknown skill '{name}'.")
        return skill
