"""``/v1/auth``: register, login, refresh, logout, me."""

from __future__ import annotations

from fastapi import APIRouter, status

from agentstream.auth import service
from agentstream.auth.deps import CurrentUser
from agentstream.auth.schemas import LoginIn, Me, RefreshIn, RegisterIn, TeamWithRole, TokenPair
from agentstream.ratelimit.deps import AuthRateLimit
from agentstream.state import SessionDep, StateDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _pair(issued: service.IssuedTokens) -> TokenPair:
    return TokenPair.model_validate(issued, from_attributes=True)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenPair,
    dependencies=[AuthRateLimit],
)
async def register(body: RegisterIn, session: SessionDep, state: StateDep) -> TokenPair:
    """Create an account with a personal team and sign in."""
    user, _ = await service.register(
        session, body.email, body.password, body.display_name, body.team_name
    )
    return _pair(await service.issue_tokens(session, state.settings, user))


@router.post("/login", response_model=TokenPair, dependencies=[AuthRateLimit])
async def login(body: LoginIn, session: SessionDep, state: StateDep) -> TokenPair:
    """Exchange email and password for tokens."""
    user = await service.authenticate_password(session, body.email, body.password)
    return _pair(await service.issue_tokens(session, state.settings, user))


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshIn, session: SessionDep, state: StateDep) -> TokenPair:
    """Rotate a refresh token: the old one stops working."""
    return _pair(await service.refresh(session, state.settings, body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshIn, session: SessionDep) -> None:
    """Revoke a refresh token."""
    await service.logout(session, body.refresh_token)


@router.get("/me", response_model=Me)
async def me(user: CurrentUser, session: SessionDep) -> Me:
    """The caller and their teams with roles."""
    teams = await service.teams_of(session, user.id)
    return Me(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        teams=[TeamWithRole(id=t.id, name=t.name, slug=t.slug, role=role) for t, role in teams],
    )
