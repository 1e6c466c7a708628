"""Redis with short timeouts and a circuit breaker, so a hung Redis costs a request ~nothing.

Redis is optional in agentstream: every feature that uses it has a fallback (the rate
limiter fails open, for instance). What must not happen is that each request waits out a
socket timeout on a Redis that has stopped answering. ``RedisGuard`` runs Redis calls;
after one failure it *opens* and, for ``cooldown_s``, refuses at once with
``RedisUnavailable`` instead of touching the socket. After the cooldown one caller probes
Redis (half-open): success closes the breaker, failure opens it for another cooldown.

Hand-written rather than a library: purgatory (the maintained asyncio breaker) has no
injectable clock and routes every call through a message bus and a named-circuit
registry; aiobreaker is unmaintained and pybreaker's async path needs Tornado.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("agentstream.redis")
T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis did not answer in time, or the breaker is open: use the fallback."""


def build_redis(url: str, timeout_s: float) -> Redis:
    """A client whose every connect and read gives up after ``timeout_s``, with no retries.

    The guard decides what a failure means; a built-in retry would multiply the wait.
    Blocking commands (``XREAD BLOCK``, pub/sub reads) need a client of their own with a
    socket timeout longer than the block.
    """
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


class RedisGuard:
    """Wraps one Redis client: short timeouts, and after a failure skips Redis for `cooldown_s`."""

    def __init__(
        self,
        redis: Redis,
        *,
        cooldown_s: float = 5.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._cooldown_s = cooldown_s
        # A bound on the whole operation (a Lua script may take two round trips), on top of
        # the socket timeouts; None trusts the client's own timeouts.
        self._timeout_s = timeout_s
        self._clock = clock
        self._open_until: float | None = None  # None: closed
        self._probing = False

    @property
    def client(self) -> Redis:
        """The wrapped client (for callers that handle failure themselves)."""
        return self._redis

    @property
    def available(self) -> bool:
        """False while the breaker is open (Redis failed less than ``cooldown_s`` ago)."""
        return self._open_until is None or self._clock() >= self._open_until

    async def run(self, op: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``op(client)``; raise ``RedisUnavailable`` at once while open, or when it fails."""
        if self._open_until is not None:
            # Half-open: after the cooldown one caller probes; the rest keep failing fast.
            if self._probing or self._clock() < self._open_until:
                raise RedisUnavailable("Redis is unavailable (circuit open)")
            self._probing = True
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await op(self._redis)
        except (TimeoutError, RedisError, OSError) as exc:
            self._trip(exc)
            raise RedisUnavailable(f"Redis is unavailable: {exc!r}") from exc
        finally:
            self._probing = False
        self._reset()
        return result

    def _trip(self, exc: BaseException) -> None:
        if self._open_until is None:
            # Once per outage: a failed probe only extends the cooldown, silently.
            log.warning(
                "Redis unavailable (%r); skipping it for %.1f s at a time", exc, self._cooldown_s
            )
        self._open_until = self._clock() + self._cooldown_s

    def _reset(self) -> None:
        if self._open_until is not None:
            self._open_until = None
            log.info("Redis is available again")
