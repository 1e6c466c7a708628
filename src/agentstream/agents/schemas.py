"""Agent bodies; ``skills: null`` (the default) means every available skill."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from agentstream.chat.schemas import Multitask
from agentstream.kit.schemas import Input, Output
from agentstream.llm.registry import MODEL_PATTERN, validate_model_string
from agentstream.models import AgentStatus

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=64)]
ModelName = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": MODEL_PATTERN}),
    AfterValidator(validate_model_string),
]
SkillName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
McpServerName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]
McpServerNames = Annotated[list[McpServerName], Field(max_length=32)]


class AgentSettings(Input):
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    # What a message to a busy conversation does when the request does not say (default
    # ``"reject"``).
    multitask: Multitask | None = None


class AgentCreate(Input):
    slug: Slug
    name: str = Field(min_length=1, max_length=100)
    instructions: str = Field(default="", max_length=20_000)
    model: ModelName | None = None
    skills: list[SkillName] | None = Field(default=None, max_length=100)
    mcp_servers: McpServerNames = Field(default_factory=list)
    settings: AgentSettings = Field(default_factory=AgentSettings)


class AgentUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    instructions: str | None = Field(default=None, max_length=20_000)
    model: ModelName | None = None
    skills: list[SkillName] | None = Field(default=None, max_length=100)
    mcp_servers: McpServerNames | None = None
    status: Literal["active", "paused"] | None = None
    settings: AgentSettings | None = None


class AgentPublic(Output):
    id: uuid.UUID
    slug: str
    name: str
    instructions: str
    model: str
    skills: list[str]
    mcp_servers: list[str]
    status: AgentStatus
    settings: AgentSettings
    created_at: datetime
    updated_at: datetime


class SkillPublic(Output):
    name: str
    description: str
