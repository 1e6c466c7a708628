"""The skill catalogue: loading, overriding, skipping bad folders, and confined file reads."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agentstream.skills.catalog import BUILTIN_DIR, SkillCatalog, SkillError
from tests.skills.conftest import MakeSkill


def test_builtin_skills_load_with_description_body_and_reference_file() -> None:
    catalog = SkillCatalog.load(None)
    skills = catalog.all()
    assert len(skills) >= 3
    assert [s.name for s in skills] == sorted(s.name for s in skills)
    for skill in skills:
        assert skill.description
        assert len(skill.body.splitlines()) >= 10
        assert not skill.body.startswith("---")
        assert skill.root.parent == BUILTIN_DIR.resolve()
    assert "reference/checklist.md" in catalog.reference_files("code-review")
    assert "Review checklist" in catalog.read_file("code-review", "reference/checklist.md")


def test_front_matter_body_and_reference_files_are_parsed(
    make_skill: MakeSkill, skills_root: Path
) -> None:
    folder = make_skill(
        "release-notes",
        description="Write release notes.",
        body="# Release notes\n\nGroup changes by type.",
        files={"reference/template.md": "## Added\n", "examples/one.md": "v1"},
    )
    catalog = SkillCatalog.load(skills_root)
    skill = catalog.get("release-notes")
    assert skill is not None
    assert skill.name == "release-notes"
    assert skill.description == "Write release notes."
    assert skill.body == "# Release notes\n\nGroup changes by type."
    assert skill.root == folder.resolve()
    assert catalog.reference_files("release-notes") == ["examples/one.md", "reference/template.md"]
    assert "release-notes" in catalog.names()


def test_extra_directory_adds_skills_and_overrides_builtins(
    make_skill: MakeSkill, skills_root: Path
) -> None:
    make_skill("summarize", description="Our house summary style.", body="Use three bullets.")
    make_skill("triage", description="Triage bug reports.")
    builtin = SkillCatalog.load(None)
    catalog = SkillCatalog.load(skills_root)

    overridden = catalog.get("summarize")
    assert overridden is not None
    assert overridden.description == "Our house summary style."
    assert overridden.body == "Use three bullets."
    assert catalog.names() == builtin.names() | {"triage"}


@pytest.mark.parametrize(
    ("folder", "skill_md"),
    [
        ("bad-yaml", "---\nname: [unclosed\ndescription: x\n---\nbody\n"),
        ("no-name", "---\ndescription: Missing a name.\n---\nbody\n"),
        ("not-a-slug", "---\nname: Not A Slug\ndescription: Spaces.\n---\nbody\n"),
        ("no-description", "---\nname: no-description\n---\nbody\n"),
        ("no-body", "---\nname: no-body\ndescription: Nothing inside.\n---\n"),
    ],
)
def test_malformed_skill_folder_is_skipped_with_a_warning(
    make_skill: MakeSkill,
    skills_root: Path,
    caplog: pytest.LogCaptureFixture,
    folder: str,
    skill_md: str,
) -> None:
    make_skill("good-one")
    (skills_root / folder).mkdir()
    (skills_root / folder / "SKILL.md").write_text(skill_md, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="agentstream.skills"):
        catalog = SkillCatalog.load(skills_root)
    assert "good-one" in catalog.names()
    assert not {folder, "Not A Slug"} & catalog.names()
    assert any(folder in record.getMessage() for record in caplog.records)


def test_folder_without_skill_md_and_missing_directory_are_skipped(
    make_skill: MakeSkill, skills_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_skill("good-one")
    (skills_root / "empty").mkdir()
    with caplog.at_level(logging.WARNING, logger="agentstream.skills"):
        catalog = SkillCatalog.load(skills_root)
        missing = SkillCatalog.load(tmp_path / "does-not-exist")
    assert "good-one" in catalog.names()
    assert missing.names() == SkillCatalog.load(None).names()
    messages = [r.getMessage() for r in caplog.records]
    assert any("empty" in m and "no SKILL.md" in m for m in messages)
    assert any("does-not-exist" in m for m in messages)


def test_get_unknown_skill_is_none() -> None:
    assert SkillCatalog.load(None).get("no-such-skill") is None


@pytest.fixture
def catalog(make_skill: MakeSkill, skills_root: Path, tmp_path: Path) -> SkillCatalog:
    """Skill ``alpha`` with a reference file, a sibling ``beta``, and a secret outside."""
    (tmp_path / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    make_skill("alpha", files={"reference/notes.md": "alpha notes"})
    make_skill("beta", body="beta body")
    return SkillCatalog.load(skills_root)


def test_read_file_returns_reference_file(catalog: SkillCatalog) -> None:
    assert catalog.read_file("alpha", "reference/notes.md") == "alpha notes"
    assert catalog.read_file("alpha", "./reference/notes.md") == "alpha notes"


@pytest.mark.parametrize(
    "path",
    ["../beta/SKILL.md", "../../secret.txt", "reference/../../beta/SKILL.md", "..", "a\x00b"],
)
def test_read_file_rejects_parent_traversal(catalog: SkillCatalog, path: str) -> None:
    with pytest.raises(SkillError, match="outside the skill 'alpha'"):
        catalog.read_file("alpha", path)


def test_read_file_rejects_absolute_paths(catalog: SkillCatalog, tmp_path: Path) -> None:
    alpha = catalog.get("alpha")
    assert alpha is not None
    for path in [str(tmp_path / "secret.txt"), "/etc/passwd", str(alpha.root / "SKILL.md")]:
        with pytest.raises(SkillError, match="outside the skill 'alpha'"):
            catalog.read_file("alpha", path)


def test_symlinks_escaping_the_skill_folder_are_rejected_and_not_listed(
    catalog: SkillCatalog, tmp_path: Path
) -> None:
    alpha = catalog.get("alpha")
    assert alpha is not None
    (alpha.root / "leak.md").symlink_to(tmp_path / "secret.txt")
    (alpha.root / "outside-dir").symlink_to(tmp_path, target_is_directory=True)
    (alpha.root / "inside-link.md").symlink_to(alpha.root / "reference" / "notes.md")

    for path in ["leak.md", "outside-dir/secret.txt"]:
        with pytest.raises(SkillError, match="outside the skill 'alpha'"):
            catalog.read_file("alpha", path)
    # A link that stays inside the folder is an ordinary file of the skill.
    assert catalog.read_file("alpha", "inside-link.md") == "alpha notes"
    listed = catalog.reference_files("alpha")
    assert "leak.md" not in listed
    assert not any(p.startswith("outside-dir") for p in listed)
    assert "inside-link.md" in listed


def test_read_file_missing_file_and_unknown_skill(catalog: SkillCatalog) -> None:
    with pytest.raises(SkillError, match=r"has no file 'reference/missing\.md'"):
        catalog.read_file("alpha", "reference/missing.md")
    with pytest.raises(SkillError, match="has no file 'reference'"):
        catalog.read_file("alpha", "reference")
    with pytest.raises(SkillError, match="Unknown skill 'gamma'"):
        catalog.read_file("gamma", "SKILL.md")
    with pytest.raises(SkillError, match="Unknown skill 'gamma'"):
        catalog.reference_files("gamma")
