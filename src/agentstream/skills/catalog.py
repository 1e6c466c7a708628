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
    """One skill: its catalogue entry, its instructions and the folder holding its files."""

    name: str
    description: str
    body: str
    root: Path


def _load_skill(folder: Path) -> Skill | None:
    """The skill in ``folder``, or ``None`` (logged) when its SKILL.md is unusable."""
    try:
        post = frontmatter.loads((folder / "SKILL.md").read_text(encoding="utf-8"))
    except Exception as exc:  # YAML, encoding and I/O errors all mean "skip this folder"
        log.warning("skipping malformed skill %s: %s", folder, exc)
        return None
    name, description = post.metadata.get("name"), post.metadata.get("description")
    if not isinstance(name, str) or not _NAME.match(name):
        log.warning("skipping skill %s: front matter 'name' must be a lowercase slug", folder)
        return None
    if not isinstance(description, str) or not description.strip():
        log.warning("skipping skill %s: front matter needs a 'description'", folder)
        return None
    if not post.content.strip():
        log.warning("skipping skill %s: SKILL.md has no instructions", folder)
        return None
    return Skill(
        name=name, description=description.strip(), body=post.content.strip(), root=folder.resolve()
    )


def _scan(directory: Path) -> dict[str, Skill]:
    skills: dict[str, Skill] = {}
    if not directory.is_dir():
        log.warning("skills directory %s does not exist", directory)
        return skills
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        if not (folder / "SKILL.md").is_file():
            log.warning("skipping %s: no SKILL.md", folder)
            continue
        skill = _load_skill(folder)
        if skill is None:
            continue
        if skill.name in skills:
            log.warning("skipping %s: skill '%s' is already defined", folder, skill.name)
            continue
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
            p.relative_to(skill.root).as_posix()
            for p in skill.root.rglob("*")
            if p.is_file()
            and p.name != "SKILL.md"
            and not any(part.startswith(".") for part in p.relative_to(skill.root).parts)
            and p.resolve().is_relative_to(skill.root)
        )

    def read_file(self, name: str, relative_path: str) -> str:
        """A file of the skill; no path may leave the skill's folder."""
        skill = self._require(name)
        outside = SkillError(f"'{relative_path}' is outside the skill '{name}'; not allowed.")
        candidate = Path(relative_path)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise outside
        try:
            target = (skill.root / candidate).resolve()
        except (OSError, ValueError) as exc:  # symlink loops, NUL bytes
            raise outside from exc
        # Resolving follows symlinks, so a link pointing out of the folder is caught here.
        if not target.is_relative_to(skill.root):
            raise outside
        if not target.is_file():
            raise SkillError(f"The skill '{name}' has no file '{relative_path}'.")
        try:
            return target.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise SkillError(
                f"The file '{relative_path}' of skill '{name}' is unreadable."
            ) from exc

    def _require(self, name: str) -> Skill:
        skill = self._skills.get(name)
        if skill is None:
            raise SkillError(f"Unknown skill '{name}'.")
        return skill
