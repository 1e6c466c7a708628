"""Team API keys: created with a role no higher than the creator's, stored hashed."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from agentstream import tenancy
from agentstream.apikeys.schemas import ApiKeyCreated, ApiKeyPublic
from agentstream.auth import tokens
from agentstream.auth.service import Principal
from agentstream.kit.errors import NotFound
from agentstream.kit.pagination import PageParams, paginate
from agentstream.models import ApiKey, Role, utcnow
from agentstream.tenancy import Caller


async def create(
    session: AsyncSession, principal: Principal, name: str, role: Role
) -> ApiKeyCreated:
    """Create a key; the plain key is returned here and never again."""
    principal.require(role)
    key = tokens.new_api_key()
    api_key = ApiKey(
        team_id=principal.team_id,
        user_id=principal.user.id,
        name=name,
        role=role,
        prefix=key[:10],
        key_hash=tokens.hash_token(key),
    )
    session.add(api_key)
    await session.flush()
    return ApiKeyCreated(**ApiKeyPublic.model_validate(api_key).model_dump(), key=key)


async def list_keys(
    session: AsyncSession, caller: Caller, params: PageParams
) -> tuple[list[ApiKeyPublic], str | None, bool]:
    """A page of the team's keys, newest first."""
    rows, cursor, has_more = await paginate(session, tenancy.api_keys(caller), ApiKey, params)
    return [ApiKeyPublic.model_validate(k) for k in rows], cursor, has_more


async def revoke(session: AsyncSession, caller: Caller, key_id: uuid.UUID) -> None:
    """Revoke a key of the team; it stops working at once."""
    api_key = await session.scalar(tenancy.api_keys(caller).where(ApiKey.id == key_id))
    if api_key is None:
        raise NotFound("api_key")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
