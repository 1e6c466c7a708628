"""API key bodies: the secret appears once, in the creation response."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from agentstream.kit.schemas import Input, Output
from agentstream.models import Role


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.member


class ApiKeyPublic(Output):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str
