"""Team and membership bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from agentstream.auth.schemas import TeamWithRole
from agentstream.kit.schemas import Input, Output
from agentstream.models import Role


class TeamCreate(Input):
    name: str = Field(min_length=1, max_length=100)


class MemberAdd(Input):
    email: EmailStr
    role: Role = Role.member


class MemberUpdate(Input):
    role: Role


class MemberPublic(Output):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    joined_at: datetime


class TeamDetail(TeamWithRole):
    created_at: datetime
