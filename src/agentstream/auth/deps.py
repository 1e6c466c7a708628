"""Request authentication: credentials → principal, plus role requirements."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agentstream.auth.service import Principal, resolve_principal, resolve_user
from agentstream.db import transaction
from agentstream.kit.errors import Unauthorized, ValidationFailed
from agentstream.models import Role, User
from agentstream.ratelimit.deps import enforce
from agentstream.state import StateDep

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


def _credential(bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> str:
    credential = api_key or (bearer.credentials if bearer else None)
    if not credential:
        raise Unauthorized()
    return credential


# Authentication uses its own short transaction, released before the endpoint's session
# (or a chat run's sessions) are opened: a request never waits on the pool while holding a
# connection, so concurrent requests cannot deadlock the pool.


async def get_current_user(
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> User:
    """The authenticated user, without selecting a team."""
    credential = _credential(bearer, api_key)
    async with transaction(state.sessions) as session:
        return await resolve_user(session, state.settings.resolved_jwt_secret, credential)


async def get_principal(
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
    x_team_id: Annotated[str | None, Header(alias="X-Team-ID")] = None,
) -> Principal:
    """The caller, with membership re-read and the request counted toward the API limit."""
    credential, team_id = _credential(bearer, api_key), parse_team_id(x_team_id)
    async with transaction(state.sessions) as session:
        principal = await resolve_principal(
            session, state.settings.resolved_jwt_secret, credential, team_id
        )
    await enforce(state, f"api:{principal.team_id}", state.settings.rate_limit_api)
    return principal


def require_role(role: Role) -> object:
    """A dependency that yields the principal when their role is at least ``role``."""

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(role)
        return principal

    return Depends(dependency)


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
ViewerPrincipal = Annotated[Principal, require_role(Role.viewer)]
MemberPrincipal = Annotated[Principal, require_role(Role.member)]
AdminPrincipal = Annotated[Principal, require_role(Role.admin)]
OwnerPrincipal = Annotated[Principal, require_role(Role.owner)]
