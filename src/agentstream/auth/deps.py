"""Request authentication: credentials → principal, plus role requirements.

Every authenticated ``/v1`` request goes through ``authenticate`` (or ``get_current_user``
for the routes that need no team), which re-reads the membership and counts the request
toward the team's API rate limit — WebSocket message frames included.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agentstream.auth.service import (
    Principal,
    api_key_principal,
    check_credential,
    member_principal,
    resolve_user,
    selected_team,
)
from agentstream.db import transaction
from agentstream.kit.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from agentstream.models import Role, User
from agentstream.ratelimit.deps import count_api_request
from agentstream.state import AppState, StateDep

_bearer = HTTPBearer(auto_error=False, description="JWT access token or API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def parse_team_id(value: str | None) -> uuid.UUID | None:
    """Parse an ``X-Team-ID`` / ``?team_id=`` value."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed("X-Team-ID must be a UUID.") from exc


async def _credential(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> str:
    credential = api_key or (bearer.credentials if bearer else None)
    if not credential:
        raise Unauthorized()
    return credential


Credential = Annotated[str, Depends(_credential)]


# Authentication uses its own short transaction, released before the endpoint's session
# (or a chat run's sessions) are opened: a request never waits on the pool while holding a
# connection, so concurrent requests cannot deadlock the pool.


async def principal_for(
    state: AppState, credential: str, team_override: uuid.UUID | None
) -> Principal:
    """The caller in ``team_override`` (or the credential's team), checked against the
    database — or against the membership cache, which forgets a team's entries when any
    worker commits a change to its memberships (``kit.cache``). A credential that cannot be
    valid (a bad or expired JWT, a malformed key) is refused before any database work."""
    claims = check_credential(state.settings.resolved_jwt_secret, credential)
    if claims is None:  # an API key: looked up every time (revocation is one row)
        async with transaction(state.sessions) as session:
            return await api_key_principal(session, credential, team_override)
    team_id = selected_team(claims, team_override)
    cache = state.caches.principals
    cached: Principal | None = cache.get(team_id, claims.user_id)
    if cached is not None:
        return cached
    ticket = cache.ticket(team_id, claims.user_id)
    async with transaction(state.sessions) as session:
        principal = await member_principal(session, claims.user_id, team_id)
    cache.put(team_id, claims.user_id, principal, ticket)
    return principal


async def authenticate(state: AppState, credential: str, team_id: uuid.UUID | None) -> Principal:
    """The caller in ``team_id`` (or the credential's team), counted toward its API limit."""
    principal = await principal_for(state, credential, team_id)
    await count_api_request(state, principal.team_id)
    return principal


async def get_current_user(state: StateDep, credential: Credential) -> User:
    """The authenticated user, without selecting a team (the request still counts)."""
    claims = check_credential(state.settings.resolved_jwt_secret, credential)
    async with transaction(state.sessions) as session:
        user, team_id = await resolve_user(session, claims, credential)
    if team_id is not None:
        await count_api_request(state, team_id)
    return user


async def get_principal(
    state: StateDep,
    credential: Credential,
    x_team_id: Annotated[str | None, Header(alias="X-Team-ID")] = None,
) -> Principal:
    """The caller in the team of ``X-Team-ID`` (or the credential's own team)."""
    return await authenticate(state, credential, parse_team_id(x_team_id))


async def get_team_member(team_id: uuid.UUID, state: StateDep, credential: Credential) -> Principal:
    """The caller as a member of the team in the path; a team they are not in is not found."""
    try:
        return await authenticate(state, credential, team_id)
    except Forbidden as exc:
        raise NotFound("team") from exc


def require_role(role: Role) -> object:
    """A dependency that yields the principal when their role is at least ``role``."""

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(role)
        return principal

    return Depends(dependency)


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
TeamMember = Annotated[Principal, Depends(get_team_member)]
ViewerPrincipal = Annotated[Principal, require_role(Role.viewer)]
MemberPrincipal = Annotated[Principal, require_role(Role.member)]
AdminPrincipal = Annotated[Principal, require_role(Role.admin)]
OwnerPrincipal = Annotated[Principal, require_role(Role.owner)]
