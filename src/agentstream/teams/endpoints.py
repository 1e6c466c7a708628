"""``/v1/teams``: the caller's teams and their members."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from agentstream.auth.deps import CurrentUser, TeamMember
from agentstream.auth.schemas import TeamWithRole
from agentstream.kit.pagination import Page, PageDep
from agentstream.models import Role
from agentstream.state import SessionDep
from agentstream.teams import service
from agentstream.teams.schemas import (
    MemberAdd,
    MemberPublic,
    MemberUpdate,
    TeamCreate,
    TeamDetail,
)

router = APIRouter(prefix="/v1/teams", tags=["teams"])


@router.get("", response_model=Page[TeamWithRole])
async def list_teams(user: CurrentUser, session: SessionDep, page: PageDep) -> Page[TeamWithRole]:
    """Teams the caller belongs to."""
    items, cursor, has_more = await service.list_teams(session, user.id, page)
    return Page(items=items, cursor=cursor, has_more=has_more)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TeamDetail)
async def create_team(body: TeamCreate, user: CurrentUser, session: SessionDep) -> TeamDetail:
    """Create a team; the caller becomes its owner."""
    team = await service.create_team(session, body.name, user)
    return TeamDetail(
        id=team.id, name=team.name, slug=team.slug, role=Role.owner, created_at=team.created_at
    )


@router.get("/{team_id}", response_model=TeamDetail)
async def get_team(member: TeamMember, session: SessionDep) -> TeamDetail:
    """A team the caller belongs to."""
    team = await service.get_team(session, member)
    return TeamDetail(
        id=team.id, name=team.name, slug=team.slug, role=member.role, created_at=team.created_at
    )


@router.get("/{team_id}/members", response_model=Page[MemberPublic])
async def list_members(
    member: TeamMember, session: SessionDep, page: PageDep
) -> Page[MemberPublic]:
    """Members of a team the caller belongs to."""
    items, cursor, has_more = await service.list_members(session, member, page)
    return Page(items=items, cursor=cursor, has_more=has_more)


@router.post("/{team_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberPublic)
async def add_member(body: MemberAdd, member: TeamMember, session: SessionDep) -> MemberPublic:
    """Add an existing user to the team (owners only)."""
    member.require(Role.owner)
    return await service.add_member(session, member, body.email, body.role)


@router.delete("/{team_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(user_id: uuid.UUID, member: TeamMember, session: SessionDep) -> None:
    """Remove a member (owners only; anyone may leave a team themselves)."""
    member.require(Role.viewer if user_id == member.user_id else Role.owner)
    await service.remove_member(session, member, user_id)


@router.patch("/{team_id}/members/{user_id}", response_model=MemberPublic)
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, member: TeamMember, session: SessionDep
) -> MemberPublic:
    """Change a member's role (owners only); the last owner cannot be demoted."""
    member.require(Role.owner)
    return await service.change_role(session, member, user_id, body.role)
