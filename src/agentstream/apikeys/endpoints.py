"""``/v1/api-keys``: create, list, revoke (admins)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from agentstream.apikeys import service
from agentstream.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from agentstream.auth.deps import AdminPrincipal
from agentstream.kit.pagination import Page, PageDep
from agentstream.state import SessionDep

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_key(
    body: ApiKeyCreate, principal: AdminPrincipal, session: SessionDep
) -> ApiKeyCreated:
    """Create an API key for the current team; the key is shown only in this response."""
    return await service.create(session, principal, body.name, body.role)


@router.get("", response_model=Page[ApiKeyPublic])
async def list_keys(
    principal: AdminPrincipal, session: SessionDep, page: PageDep
) -> Page[ApiKeyPublic]:
    """The team's API keys (prefixes only)."""
    items, cursor, has_more = await service.list_keys(session, principal, page)
    return Page(items=items, cursor=cursor, has_more=has_more)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: uuid.UUID, principal: AdminPrincipal, session: SessionDep) -> None:
    """Revoke an API key."""
    await service.revoke(session, principal, key_id)
