"""True sliding-window rate limiting, in process or shared through Redis.

A window is a log of the timestamps of allowed hits. A rejected attempt is not recorded,
so a client that keeps retrying is let in as soon as its oldest hit leaves the window.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agentstream.kit.redis import RedisGuard, RedisUnavailable

Clock = Callable[[], float]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix seconds when the oldest counted hit leaves the window
    retry_after: float  # seconds; 0 when allowed

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` headers, plus ``Retry-After`` when rejected."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


def _unlimited(now: float) -> RateDecision:
    return RateDecision(True, 0, 0, now, 0.0)


def _decide(
    limit: int, window_s: float, now: float, count: int, oldest: float | None, allowed: bool
) -> RateDecision:
    reset_at = (oldest if oldest is not None else now) + window_s
    if allowed:
        return RateDecision(True, limit, max(0, limit - count), reset_at, 0.0)
    return RateDecision(False, limit, 0, reset_at, max(0.0, reset_at - now))


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: float = 60.0) -> RateDecision:
        """Count one attempt against ``key``; ``limit <= 0`` disables limiting."""
        ...

    async def aclose(self) -> None:
        """Release resources."""
        ...


class MemoryRateLimiter:
    """Per-process sliding log; exact within one worker."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._last_sweep = clock()

    async def hit(self, key: str, limit: int, window_s: float = 60.0) -> RateDecision:
        now = self._clock()
        if limit <= 0:
            return _unlimited(now)
        self._sweep(now, window_s)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        allowed = len(hits) < limit
        if allowed:
            hits.append(now)
        return _decide(limit, window_s, now, len(hits), hits[0] if hits else None, allowed)

    def _sweep(self, now: float, window_s: float) -> None:
        # Drop keys whose newest hit left the window, so idle keys do not accumulate.
        if now - self._last_sweep < window_s:
            return
        self._last_sweep = now
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - window_s]:
            del self._hits[key]

    async def aclose(self) -> None:
        self._hits.clear()


# KEYS[1] = the window; ARGV = now, window_s, limit, member. Returns {allowed, count, oldest}.
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, math.ceil(window * 1000))
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {allowed, count, oldest[2] or ''}
"""


class RedisRateLimiter:
    """The same window shared by every worker through one atomic Lua script; fails open.

    Calls go through the ``RedisGuard``: a Redis that fails or hangs is skipped for the
    guard's cooldown (every hit allowed at once, no socket touched), and the guard logs
    the outage once.
    """

    def __init__(
        self, guard: RedisGuard, clock: Clock = time.time, prefix: str = "agentstream:rl:"
    ) -> None:
        self._guard = guard
        self._clock = clock
        self._prefix = prefix
        self._script = guard.client.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, limit: int, window_s: float = 60.0) -> RateDecision:
        now = self._clock()
        if limit <= 0:
            return _unlimited(now)
        keys = [self._prefix + key]
        args: list[float | str] = [now, window_s, limit, f"{now}:{uuid.uuid4().hex}"]
        try:
            result: Any = await self._guard.run(lambda redis: self._script(keys, args, redis))
        except RedisUnavailable:
            return RateDecision(True, limit, limit, now + window_s, 0.0)
        allowed, count, oldest = int(result[0]), int(result[1]), result[2]
        oldest_at = float(oldest) if oldest not in (b"", "", None) else None
        return _decide(limit, window_s, now, count, oldest_at, bool(allowed))

    async def aclose(self) -> None:
        return None


def build_rate_limiter(guard: RedisGuard | None) -> RateLimiter:
    """Redis-backed when a Redis guard is configured, in-process otherwise."""
    return RedisRateLimiter(guard) if guard is not None else MemoryRateLimiter()
