"""Per-team caches of hot rows (principals, agents, whether memories exist), forgotten when any
worker commits a change to what they hold.

A chat stream reads the same few rows every time: the caller's membership, the agent, and
whether the team has memories at all. Caching them saves whole database round trips per
stream. Correctness rests on three rules:

- **Invalidate after commit.** ``track_changes`` watches every ORM flush for agents,
  memberships, API keys, memories and users, and the commit of that session forgets the
  affected teams — here at once, on other workers through a Redis pub/sub message.
- **No stale fill.** A reader takes a ``ticket`` before it reads the database and ``put``
  refuses its value if the team was invalidated meanwhile (the read may predate the commit).
- **No cache without the bus.** With Redis configured, other workers may write: the cache
  is used only while this worker is subscribed, and is emptied whenever it (re)subscribes
  (messages may have been missed). Without Redis there is one worker and local
  invalidation is enough. A TTL bounds what a lost message could cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from agentstream.kit.redis import RedisGuard, RedisUnavailable

log = logging.getLogger("agentstream.cache")

CHANNEL = "agentstream:invalidate"
ALL_TEAMS = "*"
_PENDING = "agentstream.invalidate"
_CACHES = "agentstream.caches"
_MAX_TEAMS = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TeamCache(Generic[K, V]):
    """Values keyed by ``(team, key)``; a team's entries go together when it is invalidated."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[Hashable, dict[K, tuple[float, V]]] = {}
        self._epochs: dict[Hashable, int] = {}
        self._epoch = 0  # bumped when every team is invalidated at once
        self.enabled = True

    def get(self, team: Hashable, key: K) -> V | None:
        """The cached value, or ``None`` (missing, expired, or the cache is off)."""
        if not self.enabled:
            return None
        found = self._entries.get(team, {}).get(key)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def ticket(self, team: Hashable) -> tuple[int, int]:
        """Take before reading the database; ``put`` accepts the value only if still current."""
        return self._epoch, self._epochs.get(team, 0)

    def put(self, team: Hashable, key: K, value: V, ticket: tuple[int, int]) -> None:
        """Remember ``value`` unless the team was invalidated since ``ticket`` was taken."""
        if not self.enabled or ticket != self.ticket(team):
            return
        if team not in self._entries and len(self._entries) >= _MAX_TEAMS:
            self._entries.clear()  # crude bound; a refill costs one query per team
        self._entries.setdefault(team, {})[key] = (self._clock() + self._ttl_s, value)

    def invalidate(self, team: Hashable) -> None:
        """Forget the team's entries (``ALL_TEAMS``: everyone's)."""
        if team == ALL_TEAMS:
            self._epoch += 1
            self._entries.clear()
            return
        self._epochs[team] = self._epochs.get(team, 0) + 1
        self._entries.pop(team, None)


class Caches:
    """This worker's hot-row caches and their invalidation bus."""

    def __init__(self, ttl_s: float, guard: RedisGuard | None = None) -> None:
        # Values are frozen snapshots (see their modules); ``Any`` keeps this module free of
        # the feature packages, which import it.
        self.principals: TeamCache[Any, Any] = TeamCache(ttl_s)
        self.agents: TeamCache[str, Any] = TeamCache(ttl_s)
        self.memories: TeamCache[uuid.UUID, bool] = TeamCache(ttl_s)
        self._all: dict[str, TeamCache[Any, Any]] = {
            "principals": self.principals,
            "agents": self.agents,
            "memories": self.memories,
        }
        self._guard = guard
        self._ttl_s = ttl_s
        self._task: asyncio.Task[None] | None = None
        self._publishes: set[asyncio.Task[None]] = set()
        self._set_enabled(guard is None)

    def _set_enabled(self, enabled: bool) -> None:
        for cache in self._all.values():
            cache.invalidate(ALL_TEAMS)
            cache.enabled = enabled

    def invalidate_locally(self, topics: set[str]) -> None:
        """Forget what this worker holds for each ``<cache>:<team>`` topic."""
        for topic in topics:
            kind, _, team = topic.partition(":")
            cache = self._all.get(kind)
            if cache is None:
                continue
            if team == ALL_TEAMS:
                cache.invalidate(ALL_TEAMS)
            else:
                with contextlib.suppress(ValueError):
                    cache.invalidate(uuid.UUID(team))

    def committed(self, topics: set[str]) -> None:
        """A transaction changed rows behind these topics: forget them here, tell the others."""
        self.invalidate_locally(topics)
        if self._guard is not None and topics:
            task = asyncio.get_running_loop().create_task(self._publish(sorted(topics)))
            self._publishes.add(task)
            task.add_done_callback(self._publishes.discard)

    async def _publish(self, topics: list[str]) -> None:
        # Retried until it is heard (a lost message would leave other workers stale until the
        # TTL), with backoff: while Redis is down, the other workers' caches are off anyway.
        assert self._guard is not None
        guard, message, delay = self._guard, ",".join(topics), 0.1
        deadline = time.monotonic() + self._ttl_s
        while time.monotonic() < deadline:
            try:
                await guard.run(lambda r: r.publish(CHANNEL, message))
                return
            except RedisUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        log.warning("could not publish a cache invalidation: %s", message)

    def received(self, data: bytes) -> None:
        """Apply another worker's invalidation message."""
        self.invalidate_locally(set(data.decode().split(",")))

    def start(self, blocking: Redis | None) -> None:
        """With Redis: listen for other workers' invalidations (the caches stay off until then)."""
        if blocking is not None:
            self._task = asyncio.create_task(self._listen(blocking), name="cache-invalidations")

    async def _listen(self, blocking: Redis) -> None:
        while True:
            try:
                async with blocking.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self._set_enabled(True)  # empty: we may have missed messages
                        elif message["type"] == "message":
                            self.received(message["data"])
            except (RedisError, OSError):
                self._set_enabled(False)
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                await asyncio.sleep(1.0)  # Redis is down: no cache, try again later
            finally:
                self._set_enabled(False)

    async def aclose(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2)
        if self._publishes:
            _, stuck = await asyncio.wait(self._publishes, timeout=2)
            for task in stuck:
                task.cancel()


def session_info(caches: Caches) -> dict[str, Any]:
    """The ``info`` of sessions whose commits invalidate ``caches``."""
    return {_CACHES: caches}


def _topic(obj: object) -> str | None:
    """The cache entries a changed row may be behind, as ``<cache>:<team>``."""
    from agentstream.models import Agent, ApiKey, Membership, Memory, User

    if isinstance(obj, Agent):
        return f"agents:{obj.team_id}"
    if isinstance(obj, Membership | ApiKey):
        return f"principals:{obj.team_id}"
    if isinstance(obj, User):
        return f"principals:{ALL_TEAMS}"  # users are not team-owned
    if isinstance(obj, Memory):
        return f"memories:{obj.team_id}"
    return None


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    if _CACHES not in session.info:
        return
    changed = {
        topic
        for obj in (*session.new, *session.dirty, *session.deleted)
        if (topic := _topic(obj)) is not None
        and (obj in session.new or obj in session.deleted or session.is_modified(obj))
    }
    if changed:
        session.info.setdefault(_PENDING, set()).update(changed)


_BULK_TOPICS = {
    "agents": "agents",
    "memberships": "principals",
    "api_keys": "principals",
    "users": "principals",
}


@event.listens_for(Session, "do_orm_execute")
def _collect_bulk(state: ORMExecuteState) -> None:
    # An ``update(Agent)`` / ``delete(Membership)`` statement names no rows we could map to
    # teams: forget that cache for every team. (Memories' bulk update only stamps
    # ``last_used_at``, which no cache holds.)
    if _CACHES not in state.session.info or not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    table = getattr(mapper.local_table, "name", None) if mapper is not None else None
    kind = _BULK_TOPICS.get(table or "")
    if kind is not None:
        state.session.info.setdefault(_PENDING, set()).add(f"{kind}:{ALL_TEAMS}")


@event.listens_for(Session, "after_commit")
def _apply(session: Session) -> None:
    topics: set[str] = session.info.pop(_PENDING, set())
    caches: Caches | None = session.info.get(_CACHES)
    if topics and caches is not None:
        caches.committed(topics)


@event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
