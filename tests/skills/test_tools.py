"""The skill tools as a model sees them: driven through a real agent with a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentstream.chat.deps import ChatDeps
from agentstream.skills.catalog import SkillCatalog
from agentstream.skills.tools import build_skill_toolset, skills_prompt
from tests.skills.conftest import MakeDeps, MakeSkill


@pytest.fixture
def catalog(make_skill: MakeSkill, skills_root: Path, tmp_path: Path) -> SkillCatalog:
    (tmp_path / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    make_skill(
        "alpha",
        description="Alpha does A.",
        body="Step one: think.\nStep two: write.",
        files={"reference/notes.md": "alpha notes", "reference/more.md": "more"},
    )
    make_skill("beta", description="Beta does B.", body="beta body")
    return SkillCatalog.load(skills_root)


async def call_tool(deps: ChatDeps, tool_name: str, **args: str) -> tuple[str, list[str]]:
    """Run an agent whose model calls ``tool_name(**args)`` once.

    Returns the tool result as the model received it, and the tools the model was offered.
    """
    seen: list[str] = []
    offered: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        offered[:] = [tool.name for tool in info.function_tools]
        last = messages[-1]
        returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if returns:
            seen.append(returns[0].model_response_str())
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=[ToolCallPart(tool_name, json.dumps(args), "call-1")])

    agent = Agent(FunctionModel(model), deps_type=ChatDeps, toolsets=[build_skill_toolset()])
    result = await agent.run("go", deps=deps)
    assert result.output == "done"
    assert len(seen) == 1
    return seen[0], offered


async def test_tools_take_only_skill_name_and_path_from_the_model() -> None:
    toolset = build_skill_toolset()
    schemas = {name: tool.tool_def.parameters_json_schema for name, tool in toolset.tools.items()}
    assert set(schemas) == {"load_skill", "read_skill_file"}
    assert set(schemas["load_skill"]["properties"]) == {"skill_name"}
    assert set(schemas["read_skill_file"]["properties"]) == {"skill_name", "path"}


async def test_load_skill_returns_body_and_reference_files(
    catalog: SkillCatalog, make_deps: MakeDeps
) -> None:
    result, offered = await call_tool(make_deps(catalog), "load_skill", skill_name="alpha")
    assert set(offered) == {"load_skill", "read_skill_file"}
    assert "Step one: think.\nStep two: write." in result
    assert "- reference/more.md\n- reference/notes.md" in result
    assert "read_skill_file" in result


async def test_load_skill_unknown_name_lists_available_skills(
    catalog: SkillCatalog, make_deps: MakeDeps
) -> None:
    result, _ = await call_tool(make_deps(catalog), "load_skill", skill_name="gamma")
    available = ", ".join(sorted(catalog.names()))
    assert available.startswith("alpha, beta, ")  # plus the built-ins
    assert result == f"Unknown skill 'gamma'. Available skills: {available}."


async def test_load_skill_not_allowed_for_this_agent_is_unknown(
    catalog: SkillCatalog, make_deps: MakeDeps
) -> None:
    deps = make_deps(catalog, frozenset({"alpha"}))
    result, _ = await call_tool(deps, "load_skill", skill_name="beta")
    assert result == "Unknown skill 'beta'. Available skills: alpha."
    assert "beta body" not in result
    result, _ = await call_tool(deps, "read_skill_file", skill_name="beta", path="SKILL.md")
    assert result == "Unknown skill 'beta'. Available skills: alpha."


async def test_read_skill_file_returns_the_file(catalog: SkillCatalog, make_deps: MakeDeps) -> None:
    result, _ = await call_tool(
        make_deps(catalog), "read_skill_file", skill_name="alpha", path="reference/notes.md"
    )
    assert result == "alpha notes"


@pytest.mark.parametrize("path", ["../beta/SKILL.md", "../../secret.txt", "/etc/passwd"])
async def test_read_skill_file_traversal_is_refused_as_text(
    catalog: SkillCatalog, make_deps: MakeDeps, path: str
) -> None:
    result, _ = await call_tool(
        make_deps(catalog), "read_skill_file", skill_name="alpha", path=path
    )
    assert result.startswith(f"'{path}' is outside the skill 'alpha'; not allowed.")
    assert "Files of this skill: reference/more.md, reference/notes.md." in result
    assert "beta body" not in result
    assert "TOP SECRET" not in result


async def test_read_skill_file_symlink_escape_is_refused_as_text(
    catalog: SkillCatalog, make_deps: MakeDeps, tmp_path: Path
) -> None:
    alpha = catalog.get("alpha")
    assert alpha is not None
    (alpha.root / "reference" / "leak.md").symlink_to(tmp_path / "secret.txt")
    result, _ = await call_tool(
        make_deps(catalog), "read_skill_file", skill_name="alpha", path="reference/leak.md"
    )
    assert "not allowed" in result
    assert "TOP SECRET" not in result


async def test_read_skill_file_missing_file_names_the_files_that_exist(
    catalog: SkillCatalog, make_deps: MakeDeps
) -> None:
    result, _ = await call_tool(
        make_deps(catalog), "read_skill_file", skill_name="alpha", path="reference/nope.md"
    )
    assert result == (
        "The skill 'alpha' has no file 'reference/nope.md'. "
        "Files of this skill: reference/more.md, reference/notes.md."
    )


def test_skills_prompt_lists_only_allowed_names_and_descriptions(
    catalog: SkillCatalog,
) -> None:
    prompt = skills_prompt(catalog, frozenset({"alpha", "not-in-catalog"}))
    assert "- alpha: Alpha does A." in prompt
    assert "beta" not in prompt
    assert "not-in-catalog" not in prompt
    assert "Step one" not in prompt
    assert "load_skill" in prompt
    assert "read_skill_file" in prompt


def test_skills_prompt_is_empty_without_allowed_skills(catalog: SkillCatalog) -> None:
    assert skills_prompt(catalog, frozenset()) == ""
    assert skills_prompt(catalog, frozenset({"not-in-catalog"})) == ""
