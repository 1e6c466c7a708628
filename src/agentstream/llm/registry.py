"""Resolving an agent's model string to a pydantic-ai model.

``openai:`` means Chat Completions (what every OpenAI-compatible server speaks);
``openai-responses:`` selects the Responses API; ``demo`` is the offline demo model.
"""

from __future__ import annotations

import re
from functools import cache

from pydantic_ai.models import Model, infer_model, known_model_names
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers import infer_provider_class
from pydantic_ai.providers.openai import OpenAIProvider

from agentstream.llm.demo import DEMO_MODEL_NAME, build_demo_model
from agentstream.llm.lean_openai import LeanOpenAIChatModel
from agentstream.settings import Settings
from agentstream.skills.catalog import SkillCatalog

# Ours, whatever pydantic-ai does with these prefixes (see the module docstring).
_OWN_PROVIDERS = ("openai", "openai-responses")
# ``provider:name``; providers may carry a route such as ``gateway/openai``.
_SHAPE = re.compile(r"^[a-z][a-z0-9_-]*(?:/[a-z][a-z0-9_-]*)?:\S+$", re.IGNORECASE)
# The same rule for the OpenAPI document (JSON Schema patterns have no flags).
MODEL_PATTERN = r"^(demo|[A-Za-z][A-Za-z0-9_-]*(/[A-Za-z][A-Za-z0-9_-]*)?:\S+)$"


class ModelConfigError(Exception):
    """The model string cannot be turned into a model in this deployment."""


def validate_model_string(model: str) -> str:
    """Accept the shape ``demo`` or ``provider:name``; whether the provider exists is
    ``ModelRegistry.is_known``'s question (it knows the deployment's registered models)."""
    value = model.strip()
    if value == DEMO_MODEL_NAME or _SHAPE.match(value):
        return value
    raise ValueError(
        "model must be 'demo' or a 'provider:model' string such as 'openai:gpt-4o-mini'"
    )


@cache
def known_providers() -> tuple[str, ...]:
    """Provider prefixes to suggest: ours and those of pydantic-ai's known model names.

    pydantic-ai accepts a few more (OpenAI-compatible aliases such as ``ollama``): validity
    is decided by ``provider_exists``, this list is what an error message offers.
    """
    theirs = {name.split(":", 1)[0] for name in known_model_names() if ":" in name}
    return (DEMO_MODEL_NAME, *sorted(theirs | set(_OWN_PROVIDERS)))


def provider_exists(provider: str) -> bool:
    """Whether pydantic-ai (or agentstream) has a provider of this name.

    A known provider whose optional SDK is not installed still exists: the agent is valid,
    and its runs report a model error until the deployment installs the extra.
    """
    if provider in _OWN_PROVIDERS:
        return True
    try:
        infer_provider_class(provider)
    except ValueError:
        return False
    except ImportError:
        return True
    return True


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

    def is_known(self, model: str) -> bool:
        """Whether an agent may use ``model``: ``demo``, a registered name, or a real provider.

        Needs no API key: nothing is built here.
        """
        if model == DEMO_MODEL_NAME or model in self._models:
            return True
        provider, sep, _ = model.partition(":")
        return bool(sep) and provider_exists(provider)

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
        provider, sep, name = model.partition(":")
        if not sep:
            # infer_model would turn the bare string "test" into its TestModel double.
            raise ModelConfigError(f"Cannot use model '{model}': expected 'provider:model'.")
        if provider == "openai":
            chat = LeanOpenAIChatModel if self._settings.lean_openai else OpenAIChatModel
            return chat(name, provider=self._openai_provider())
        if provider == "openai-responses":
            return OpenAIResponsesModel(name, provider=self._openai_provider())
        try:
            return infer_model(model)
        except Exception as exc:
            raise ModelConfigError(f"Cannot use model '{model}': {exc}") from exc
