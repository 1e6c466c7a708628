"""Teams and their members; the caller's membership is checked on every call."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.auth.schemas import TeamWithRole
from agentstream.kit.errors import Conflict, Forbidden, NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.models import Membership, Role, Team, User
from agentstream.teams.schemas import MemberPublic


async def membership_of(
    session: AsyncSession, user_id: uuid.UUID, team_id: uuid.UUID
) -> tuple[Team, Role]:
    """The team and the user's role in it; ``team_not_found`` for non-members."""
    row = (
        await session.execute(
            select(Team, Membership.role)
            .join(Membership, Membership.team_id == Team.id)
            .where(Team.id == team_id, Membership.user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("team")
    team, role = row
    return team, role


async def require_role(
    session: AsyncSession, user_id: uuid.UUID, team_id: uuid.UUID, role: Role
) -> Team:
    """The team, if the user is a member with at least ``role`` (non-members: 404)."""
    team, actual = await membership_of(session, user_id, team_id)
    if actual.rank < role.rank:
        raise Forbidden(f"This needs the {role.value} role in the team.")
    return team


def slugify(value: str, *, max_length: int = 48) -> str:
    """Lower-case, dash-separated ASCII slug."""
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    return slug[:max_length].strip("-") or "team"


async def create_team(session: AsyncSession, name: str, owner: User) -> Team:
    """Create a team with a unique slug and make ``owner`` its owner."""
    team = Team(name=name, slug=f"{slugify(name, max_length=40)}-{secrets.token_hex(3)}")
    session.add(team)
    await session.flush()
    session.add(Membership(team_id=team.id, user_id=owner.id, role=Role.owner))
    return team


async def list_members(
    session: AsyncSession, team_id: uuid.UUID, params: PageParams
) -> tuple[list[MemberPublic], str | None, bool]:
    """A page of the team's members, oldest first."""
    rows, cursor, has_more = await paginate(
        session,
        select(Membership).where(Membership.team_id == team_id),
        Membership,
        params,
        ascending=True,
    )
    users = {
        u.id: u
        for u in await session.scalars(select(User).where(User.id.in_([m.user_id for m in rows])))
    }
    items = [_member(m, users[m.user_id]) for m in rows]
    return items, cursor, has_more


def _member(membership: Membership, user: User) -> MemberPublic:
    return MemberPublic(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=membership.role,
        joined_at=membership.created_at,
    )


async def add_member(
    session: AsyncSession, team_id: uuid.UUID, email: str, role: Role
) -> MemberPublic:
    """Add an existing user to the team with ``role``."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFound("user", "No user with this email.")
    existing = await session.scalar(
        select(Membership.id).where(Membership.team_id == team_id, Membership.user_id == user.id)
    )
    if existing is not None:
        raise Conflict("This user is already a member of the team.")
    membership = Membership(team_id=team_id, user_id=user.id, role=role)
    session.add(membership)
    await session.flush()
    return _member(membership, user)


async def remove_member(session: AsyncSession, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Remove a member; the last owner cannot be removed."""
    membership = await session.scalar(
        select(Membership).where(Membership.team_id == team_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("member")
    if membership.role is Role.owner:
        owners = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.team_id == team_id, Membership.role == Role.owner)
        )
        if (owners or 0) <= 1:
            raise Conflict("A team must keep at least one owner.")
    await session.delete(membership)


async def list_teams(
    session: AsyncSession, user_id: uuid.UUID, params: PageParams
) -> tuple[list[TeamWithRole], str | None, bool]:
    """A page of the user's teams with their role, oldest membership first."""
    rows, cursor, has_more = await paginate(
        session,
        select(Membership).where(Membership.user_id == user_id),
        Membership,
        params,
        ascending=True,
    )
    teams = {
        t.id: t
        for t in await session.scalars(select(Team).where(Team.id.in_([m.team_id for m in rows])))
    }
    items = [
        TeamWithRole(
            id=m.team_id, name=teams[m.team_id].name, slug=teams[m.team_id].slug, role=m.role
        )
        for m in rows
    ]
    return items, cursor, has_more
