"""First-run setup and admin helpers shared by the CLI: demo data, users, agents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from agentstream.agents import service as agents
from agentstream.agents.schemas import AgentCreate
from agentstream.auth import service as auth
from agentstream.db import transaction
from agentstream.demo_account import DEMO_EMAIL, DEMO_PASSWORD
from agentstream.models import Membership, Role, User
from agentstream.state import AppState
from agentstream.tenancy import Identity


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    team_id: uuid.UUID
    agent_slug: str


async def ensure_demo(state: AppState) -> DemoAccount | None:
    """On an empty database create a demo user, team and ``demo`` agent."""
    async with transaction(state.sessions) as session:
        if await session.scalar(select(func.count()).select_from(User)):
            return None
        user, team = await auth.register(session, DEMO_EMAIL, DEMO_PASSWORD, "Demo", "Demo team")
        await agents.create(
            session,
            Identity(team.id, user.id),
            AgentCreate(
                slug="demo",
                name="Demo agent",
                instructions="You are a friendly assistant running on the offline demo model.",
                model="demo",
            ),
            state.skills,
            state.models,
            "demo",
        )
        return DemoAccount(DEMO_EMAIL, DEMO_PASSWORD, team.id, "demo")


async def create_user(
    state: AppState, email: str, password: str, display_name: str | None, team_name: str | None
) -> tuple[uuid.UUID, uuid.UUID]:
    """Create a user with a personal team; returns (user id, team id)."""
    async with transaction(state.sessions) as session:
        user, team = await auth.register(session, email, password, display_name, team_name)
        return user.id, team.id


async def create_agent(state: AppState, email: str, body: AgentCreate) -> uuid.UUID:
    """Create an agent in the default team of the user with ``email`` (they must be admin+)."""
    async with transaction(state.sessions) as session:
        user = await session.scalar(select(User).where(User.email == email.lower()))
        if user is None:
            raise LookupError(f"no user with email {email}")
        membership = await session.scalar(
            select(Membership).where(
                Membership.user_id == user.id, Membership.team_id == user.default_team_id
            )
        )
        if membership is None or membership.role.rank < Role.admin.rank:
            raise PermissionError(f"{email} is not an admin of their default team")
        agent = await agents.create(
            session,
            membership,
            body,
            state.skills,
            state.models,
            state.settings.default_model,
        )
        return agent.id
