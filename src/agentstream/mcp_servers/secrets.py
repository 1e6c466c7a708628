"""Header secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the
JWT secret with HKDF, so one configured secret protects both and nothing new must be kept."""

from __future__ import annotations

import base64
from functools import lru_cache

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Names the key's purpose, so the same JWT secret never yields this key for anything else.
_INFO = b"agentstream mcp server headers v1"


class HeadersUnreadable(Exception):
    """Stored headers that this secret cannot open (the JWT secret changed since)."""


class HeaderCipher:
    """Seals and opens a server's request headers."""

    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, headers: dict[str, str]) -> str:
        """The headers as a token to store."""
        return self._fernet.encrypt(orjson.dumps(headers)).decode()

    def open(self, token: str) -> dict[str, str]:
        """The headers a stored token holds."""
        try:
            headers: dict[str, str] = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise HeadersUnreadable from exc
        return headers


@lru_cache(maxsize=4)
def cipher(secret: str) -> HeaderCipher:
    """The cipher for a JWT secret (derived once per secret)."""
    return HeaderCipher(secret)
