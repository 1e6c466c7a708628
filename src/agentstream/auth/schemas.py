"""Auth request and response bodies."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import EmailStr, Field

from agentstream.kit.schemas import Input, Output
from agentstream.models import Role


class RegisterIn(Input):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    team_name: str | None = Field(default=None, min_length=1, max_length=100)


class LoginIn(Input):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(Input):
    # Any plausible token reaches the service, which answers 401 for one it did not issue
    # (an access token pasted here is a wrong credential, not malformed input).
    refresh_token: str = Field(min_length=1, max_length=4096)


class UserPublic(Output):
    id: uuid.UUID
    email: str
    display_name: str


class TeamPublic(Output):
    id: uuid.UUID
    name: str
    slug: str


class TeamWithRole(TeamPublic):
    role: Role


class TokenPair(Output):
    user: UserPublic
    team: TeamPublic
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Me(UserPublic):
    teams: list[TeamWithRole]
