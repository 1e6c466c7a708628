"""Teams and their members. Who may do what is the caller's principal in the team."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.auth.schemas import TeamWithRole
from agentstream.kit.errors import Conflict, NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.models import Membership, Role, Team, User
from agentstream.teams.schemas import MemberPublic
from agentstream.tenancy import Caller


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


async def get_team(session: AsyncSession, caller: Caller) -> Team:
    """The caller's team."""
    team = await session.get(Team, caller.team_id)
    if team is None:
        raise NotFound("team")
    return team


async def list_members(
    session: AsyncSession, caller: Caller, params: PageParams
) -> tuple[list[MemberPublic], str | None, bool]:
    """A page of the caller's team's members, oldest first."""
    rows, cursor, has_more = await paginate(
        session, tenancy.memberships(caller), Membership, params, ascending=True
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


async def add_member(session: AsyncSession, caller: Caller, email: str, role: Role) -> MemberPublic:
    """Add an existing user to the caller's team with ``role``."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFound("user", "No user with this email.")
    existing = await session.scalar(
        tenancy.memberships(caller)
        .where(Membership.user_id == user.id)
        .with_only_columns(Membership.id)
    )
    if existing is not None:
        raise Conflict("This user is already a member of the team.")
    membership = Membership(team_id=caller.team_id, user_id=user.id, role=role)
    session.add(membership)
    await session.flush()
    return _member(membership, user)


async def _lock_team(session: AsyncSession, caller: Caller) -> None:
    # Membership changes of one team take turns: two owners removing (or demoting) each
    # other at once must not both see "two owners left". SQLite's transactions already take
    # the write lock up front (``db.py``); PostgreSQL locks the team's row.
    await session.execute(select(Team.id).where(Team.id == caller.team_id).with_for_update())


async def _locked_member(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> Membership:
    await _lock_team(session, caller)
    membership = await session.scalar(
        tenancy.memberships(caller).where(Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("member")
    return membership


async def _keep_an_owner(session: AsyncSession, caller: Caller, membership: Membership) -> None:
    if membership.role is not Role.owner:
        return
    owners = await session.scalar(
        tenancy.memberships(caller)
        .where(Membership.role == Role.owner)
        .with_only_columns(func.count())
    )
    if (owners or 0) <= 1:
        raise Conflict("A team must keep at least one owner.")


async def remove_member(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> None:
    """Remove a member of the caller's team; the last owner cannot be removed."""
    membership = await _locked_member(session, caller, user_id)
    await _keep_an_owner(session, caller, membership)
    await session.delete(membership)


async def change_role(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID, role: Role
) -> MemberPublic:
    """Give a member of the caller's team another role; the last owner cannot be demoted."""
    membership = await _locked_member(session, caller, user_id)
    if role is not Role.owner:
        await _keep_an_owner(session, caller, membership)
    membership.role = role
    await session.flush()
    user = await session.get(User, user_id)
    assert user is not None  # the membership's foreign key
    return _member(membership, user)


async def list_teams(
    session: AsyncSession, user_id: uuid.UUID, params: PageParams
) -> tuple[list[TeamWithRole], str | None, bool]:
    """A page of the user's teams with their role, oldest membership first."""
    rows, cursor, has_more = await paginate(
        session, tenancy.own_memberships(user_id), Membership, params, ascending=True
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
