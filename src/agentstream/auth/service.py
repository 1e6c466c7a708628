"""Accounts, sessions (tokens), and turning a credential into a principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentstream.auth import passwords, tokens
from agentstream.kit.errors import Conflict, Forbidden, Unauthorized
from agentstream.models import ApiKey, Membership, RefreshToken, Role, Team, User, utcnow
from agentstream.settings import Settings
from agentstream.teams.service import create_team

# Refresh the API key's last_used_at at most this often, to keep writes off the hot path.
_LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling, in which team, with which role (re-read from the database)."""

    user: User
    team_id: uuid.UUID
    role: Role
    api_key_id: uuid.UUID | None = None

    @property
    def user_id(self) -> uuid.UUID:
        """The caller's user id (a principal is a ``tenancy.Caller``)."""
        return self.user.id

    def require(self, role: Role) -> None:
        """Raise ``Forbidden`` unless the caller's role is at least ``role``."""
        if self.role.rank < role.rank:
            raise Forbidden(f"This action needs the {role.value} role.")


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    team: Team
    access_token: str
    refresh_token: str
    expires_in: int


async def register(
    session: AsyncSession,
    email: str,
    password: str,
    display_name: str | None,
    team_name: str | None,
) -> tuple[User, Team]:
    """Create a user with a personal team they own."""
    email = email.lower()
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this email already exists.")
    user = User(
        email=email,
        password_hash=passwords.hash_password(password),
        display_name=display_name or email.split("@", 1)[0],
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists.") from exc
    team = await create_team(session, team_name or f"{user.display_name}'s team", user)
    user.default_team_id = team.id
    await session.flush()
    return user, team


async def authenticate_password(session: AsyncSession, email: str, password: str) -> User:
    """The user with these credentials; the same error (and cost) for every failure."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        passwords.burn_verification(password)
        raise Unauthorized("Invalid email or password.")
    if not passwords.verify_password(user.password_hash, password) or not user.is_active:
        raise Unauthorized("Invalid email or password.")
    return user


async def _default_team(session: AsyncSession, user: User) -> Team:
    stmt = (
        select(Team)
        .join(Membership, Membership.team_id == Team.id)
        .where(Membership.user_id == user.id)
        .order_by((Team.id == user.default_team_id).desc(), Membership.created_at)
        .limit(1)
    )
    team = await session.scalar(stmt)
    if team is None:
        raise Forbidden("You are not a member of any team.")
    return team


async def issue_tokens(session: AsyncSession, settings: Settings, user: User) -> IssuedTokens:
    """A new access token and a new stored refresh token for the user's default team."""
    team = await _default_team(session, user)
    refresh = tokens.new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            token_hash=tokens.hash_token(refresh),
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    access = tokens.create_access_token(
        settings.resolved_jwt_secret, user.id, team.id, settings.access_token_ttl_s
    )
    return IssuedTokens(user, team, access, refresh, settings.access_token_ttl_s)


async def _consume_refresh_token(session: AsyncSession, refresh_token: str) -> uuid.UUID:
    # An atomic compare-and-set: of two concurrent uses of one token, exactly one wins.
    result = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == tokens.hash_token(refresh_token),
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
        .returning(RefreshToken.user_id)
    )
    user_id = result.scalar_one_or_none()
    if user_id is None:
        raise Unauthorized("Invalid or already used refresh token.")
    return user_id


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> IssuedTokens:
    """Rotate: the presented refresh token is spent and a new pair is issued."""
    user_id = await _consume_refresh_token(session, refresh_token)
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid or already used refresh token.")
    return await issue_tokens(session, settings, user)


async def logout(session: AsyncSession, refresh_token: str) -> None:
    """Spend a refresh token so it can no longer be used.

    Idempotent for a token we issued; a token we never issued (an access token, garbage)
    is 401, like ``refresh``.
    """
    token_id = await session.scalar(
        select(RefreshToken.id).where(RefreshToken.token_hash == tokens.hash_token(refresh_token))
    )
    if token_id is None:
        raise Unauthorized("Unknown refresh token.")
    await session.execute(
        update(RefreshToken).where(RefreshToken.id == token_id).values(used_at=utcnow())
    )


async def member_principal(
    session: AsyncSession, user_id: uuid.UUID, team_id: uuid.UUID
) -> Principal:
    """The active user as a member of ``team_id`` (``Unauthorized`` / ``Forbidden`` if not)."""
    row = (
        await session.execute(
            select(User, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(User.id == user_id, Membership.team_id == team_id)
        )
    ).one_or_none()
    if row is None:
        if await session.get(User, user_id) is None:
            raise Unauthorized()
        raise Forbidden("You are not a member of this team.")
    user, role = row
    if not user.is_active:
        raise Unauthorized()
    return Principal(user=user, team_id=team_id, role=role)


async def api_key_principal(
    session: AsyncSession, key: str, team_override: uuid.UUID | None
) -> Principal:
    """The principal of an API key (after ``check_credential``), checked against the database."""
    row = (
        await session.execute(
            select(ApiKey, User, Membership.role)
            .join(User, User.id == ApiKey.user_id)
            .join(
                Membership,
                (Membership.user_id == ApiKey.user_id) & (Membership.team_id == ApiKey.team_id),
            )
            .where(ApiKey.key_hash == tokens.hash_token(key), ApiKey.revoked_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("Invalid or revoked API key.")
    api_key, user, member_role = row
    if not user.is_active:
        raise Unauthorized("Invalid or revoked API key.")
    if team_override is not None and team_override != api_key.team_id:
        raise Forbidden("An API key only works for its own team.")
    now = datetime.now(UTC)
    last = api_key.last_used_at
    if last is None or now - last.replace(tzinfo=last.tzinfo or UTC) > _LAST_USED_GRANULARITY:
        api_key.last_used_at = now
    # A key never grants more than its creator still has.
    role = min(api_key.role, member_role, key=lambda r: r.rank)
    return Principal(user=user, team_id=api_key.team_id, role=role, api_key_id=api_key.id)


def check_credential(secret: str, credential: str) -> tokens.AccessClaims | None:
    """What can be told of a credential without the database: a JWT's claims (signature,
    expiry, type), or ``None`` for an API key of the right shape; anything else is refused
    here, before any database work."""
    if tokens.looks_like_api_key(credential):
        if not tokens.is_well_formed_api_key(credential):
            raise Unauthorized("Invalid or revoked API key.")
        return None
    claims = tokens.decode_access_token(secret, credential)
    if claims is None:
        raise Unauthorized("Invalid or expired token.")
    return claims


def selected_team(claims: tokens.AccessClaims, team_override: uuid.UUID | None) -> uuid.UUID:
    """The team a JWT's request acts in: ``X-Team-ID`` / ``?team_id=``, or the token's."""
    team_id = team_override or claims.team_id
    if team_id is None:
        raise Forbidden("No team selected; send X-Team-ID.")
    return team_id


async def resolve_user(
    session: AsyncSession, claims: tokens.AccessClaims | None, credential: str
) -> tuple[User, uuid.UUID | None]:
    """The active user behind a checked credential, whatever team it names (for ``/me`` and
    ``/teams``), with the team the request counts against (the key's, or the token's)."""
    if claims is None:
        principal = await api_key_principal(session, credential, None)
        return principal.user, principal.team_id
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid or expired token.")
    return user, claims.team_id


async def teams_of(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[Team, Role]]:
    """Every team the user belongs to, with their role, oldest membership first."""
    rows = await session.execute(
        select(Team, Membership.role)
        .join(Membership, Membership.team_id == Team.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at)
    )
    return [(team, role) for team, role in rows]
