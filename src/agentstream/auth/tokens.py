"""JWT access tokens, opaque refresh tokens and API keys (stored only as hashes)."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

API_KEY_PREFIX = "as_"
_API_KEY_BYTES = 32
# What ``new_api_key`` makes: the prefix and 32 bytes in urlsafe base64 (43 characters).
_API_KEY_SHAPE = re.compile(rf"{API_KEY_PREFIX}[A-Za-z0-9_-]{{43}}")
_ALGORITHM = "HS256"
_LEEWAY_S = 1


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    team_id: uuid.UUID | None


def create_access_token(
    secret: str, user_id: uuid.UUID, team_id: uuid.UUID | None, ttl_s: int
) -> str:
    """Sign an access token for a user and their default team."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "team_id": str(team_id) if team_id else None,
        "iat": now,
        "exp": now + ttl_s,
        "type": "access",
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode_access_token(secret: str, token: str, now: float | None = None) -> AccessClaims | None:
    """Verify signature, algorithm, expiry (1 s leeway) and type; ``None`` when invalid.

    ``now`` (epoch seconds) replaces the wall clock for the expiry check, so tests can move
    time; by default PyJWT checks expiry against the real clock.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            leeway=_LEEWAY_S,
            options={"require": ["sub", "exp", "iat", "type"], "verify_exp": now is None},
        )
        if now is not None and int(claims["exp"]) <= now - _LEEWAY_S:
            return None  # PyJWT's own rule, against the given clock
        if claims.get("type") != "access":
            return None
        team = claims.get("team_id")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            team_id=uuid.UUID(team) if team else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        return None


def hash_token(token: str) -> str:
    """SHA-256 of a high-entropy secret (refresh token, API key): safe to index and compare."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    """A fresh opaque refresh token."""
    return secrets.token_urlsafe(48)


def new_api_key() -> str:
    """A fresh API key; its first characters are shown as a prefix."""
    return API_KEY_PREFIX + secrets.token_urlsafe(_API_KEY_BYTES)


def looks_like_api_key(token: str) -> bool:
    """API keys and JWTs share the bearer header; keys carry a prefix."""
    return token.startswith(API_KEY_PREFIX)


def is_well_formed_api_key(token: str) -> bool:
    """Whether ``token`` has the shape of a key we issue (checked before any database work)."""
    return _API_KEY_SHAPE.fullmatch(token) is not None
