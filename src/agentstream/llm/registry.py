"""Resolving an agent's model string to a pydantic-ai model.

``openai:`` means Chat Completions (what every OpenAI-compatible server speaks);
``openai-responses:`` selects the Responses API; ``demo`` is the offline demo model.
"""

from __future__ import annotations

import re

from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.providers.openai import OpenAIProvider

from agentstream.llm.demo import DEMO_MODEL_NAME, build_demo_model
from agentstream.settings import Settings
from agentstream.skills.catalog import SkillCatalog

TEST_MODEL_NAME = "test"
# ``provider:name``; providers may carry a route such as ``gateway/openai``.
_SHAPE = re.compile(r"^[a-z][a-z0-9_-]*(?:/[a-z][a-z0-9_-]*)?:\S+$", re.IGNORECASE)


class ModelConfigError(Exception):
    """The model string cannot be turned into a model in this deployment."""


def validate_model_string(model: str) -> str:
    """Accept ``demo``, ``test`` and ``provider:name``; no API key is needed to validate."""
    value = model.strip()
    if value in (DEMO_MODEL_NAME, TEST_MODEL_NAME) or _SHAPE.match(value):
        return value
    raise ValueError(
        "model must be 'demo' or a 'provider:model' string such as 'openai:gpt-4o-mini'"
    )


class ModelRegistry:
    """Builds and caches models; tests may register their own under a name."""

    def __init__(self, settings: Settings, skills: SkillCatalog) -> None:
        self._settings = settings
        self._skills = skills
        self._models: dict[str, Model] = {}
        self._openai: OpenAIProvider | None = None

    def register(self, name: str, model: Model) -> None:
        """Make ``name`` resolve to ``model`` (test doubles, custom deployments)."""
        self._models[name] = model

    def _openai_provider(self) -> OpenAIProvider:
        if self._openai is None:
            self._openai = OpenAIProvider(
                base_url=self._settings.openai_base_url,
                api_key=self._settings.openai_api_key or "not-needed",
            )
        return self._openai

    def resolve(self, model: str) -> Model:
        """The model for an agent's model string (built once, then cached)."""
        cached = self._models.get(model)
        if cached is not None:
            return cached
        built = self._build(model)
        self._models[model] = built
        return built

    def _build(self, model: str) -> Model:
        if model == DEMO_MODEL_NAME:
            return build_demo_model(self._settings.demo_token_delay_ms, self._skills.names)
        if model == TEST_MODEL_NAME:
            return TestModel()
        provider, _, name = model.partition(":")
        if provider == "openai":
            return OpenAIChatModel(name, provider=self._openai_provider())
        if provider == "openai-responses":
            return OpenAIResponsesModel(name, provider=self._openai_provider())
        try:
            return infer_model(model)
        except Exception as exc:
            raise ModelConfigError(f"Cannot use model '{model}': {exc}") from exc
