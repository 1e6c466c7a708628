"""Per-team caches of hot rows (principals, agents, whether memories exist), forgotten when any
worker commits a change to what they hold.

A chat stream reads the same few rows every time: the caller's membership, the agent, and
whether the team has memories at all. Caching them saves whole database round trips per
stream. Correctness rests on these rules:

- **Invalidate after commit, at once here.** ``track_changes`` watches every ORM flush for
  agents, memberships, API keys, memories and users, and the commit of that session forgets
  the affected entries on this worker before the request returns — scoped to what changed: a
  team's entries, or one user's in every team (never everyone's for one user's change).
- **No stale fill.** A reader takes a ``ticket`` before it reads the database and ``put``
  refuses its value if the entry was invalidated meanwhile (the read may predate the commit).
- **Other workers within a second, or no cache.** The topics are published on Redis (retried
  until heard); each worker's listener pings Redis on its subscription every
  ``PROBE_S`` and trusts its caches only while it has heard from Redis within ``LEASE_S``
  (1 s). A message can only be missed while the subscription is broken or silent, and then
  the caches are bypassed (every read goes to the database) and emptied before they are
  trusted again. Without Redis there is one worker and local invalidation is enough.
- **A TTL as the last bound** (``AGENTSTREAM_CACHE_TTL_S``): it covers what no rule above can
  see — a worker that committed and died before publishing, or one cut off from Redis while
  the others still hear it (its publishes are retried until they get through or the TTL
  has passed).
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
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from agentstream.kit.redis import RedisGuard

log = logging.getLogger("agentstream.cache")

CHANNEL = "agentstream:invalidate"
ALL_TEAMS = "*"
USER = "user"  # topic ``user:<id>``: one user's principals, in every team
_PENDING = "agentstream.invalidate"
_CACHES = "agentstream.caches"
_MAX_TEAMS = 10_000
_MAX_KEY_EPOCHS = 100_000
# The subscription is pinged this often, and trusted for LEASE_S after the last answer.
PROBE_S = 0.2
LEASE_S = 1.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Ticket = tuple[int, int, int]


class TeamCache(Generic[K, V]):
    """Values keyed by ``(team, key)``; a team's entries go together when it is invalidated,
    and a key's entries in every team when the key is."""

    def __init__(
        self,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._trusted = trusted
        self._entries: dict[Hashable, dict[K, tuple[float, V]]] = {}
        self._epochs: dict[Hashable, int] = {}
        self._key_epochs: dict[K, int] = {}
        self._epoch = 0  # bumped when every entry is invalidated at once

    def get(self, team: Hashable, key: K) -> V | None:
        """The cached value, or ``None`` (missing, expired, or the cache is not trusted now)."""
        if not self._trusted():
            return None
        found = self._entries.get(team, {}).get(key)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def ticket(self, team: Hashable, key: K) -> Ticket:
        """Take before reading the database; ``put`` accepts the value only if still current."""
        return self._epoch, self._epochs.get(team, 0), self._key_epochs.get(key, 0)

    def put(self, team: Hashable, key: K, value: V, ticket: Ticket) -> None:
        """Remember ``value`` unless its entry was invalidated since ``ticket`` was taken."""
        if not self._trusted() or ticket != self.ticket(team, key):
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

    def invalidate_key(self, key: K) -> None:
        """Forget ``key``'s entries in every team."""
        if len(self._key_epochs) >= _MAX_KEY_EPOCHS:
            self.invalidate(ALL_TEAMS)  # also refuses every ticket taken before
            self._key_epochs.clear()
            return
        self._key_epochs[key] = self._key_epochs.get(key, 0) + 1
        for entries in self._entries.values():
            entries.pop(key, None)


class Caches:
    """This worker's hot-row caches and their invalidation bus."""

    def __init__(
        self,
        ttl_s: float,
        guard: RedisGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        # Values are frozen snapshots (see their modules); ``Any`` keeps this module free of
        # the feature packages, which import it.
        self.principals: TeamCache[Any, Any] = TeamCache(ttl_s, trusted=self.trusted)
        self.agents: TeamCache[str, Any] = TeamCache(ttl_s, trusted=self.trusted)
        self.memories: TeamCache[uuid.UUID, bool] = TeamCache(ttl_s, trusted=self.trusted)
        self._all: dict[str, TeamCache[Any, Any]] = {
            "principals": self.principals,
            "agents": self.agents,
            "memories": self.memories,
        }
        self._guard = guard
        self._ttl_s = ttl_s
        # With Redis: trusted until this time (the last word from the subscription + LEASE_S).
        self._trusted_until = float("-inf")
        self._task: asyncio.Task[None] | None = None
        # topic -> (commit number, when): the last commit of each topic not yet published.
        self._outbox: dict[str, tuple[int, float]] = {}
        self._commits = 0
        self._publisher: asyncio.Task[None] | None = None

    def trusted(self) -> bool:
        """Whether cached values may be served: always without Redis; with it, only while
        this worker has heard from its subscription within ``LEASE_S``."""
        return self._guard is None or self._clock() < self._trusted_until

    def _heard(self) -> None:
        now = self._clock()
        if now >= self._trusted_until:
            # The subscription was broken or silent: messages may have been missed.
            for cache in self._all.values():
                cache.invalidate(ALL_TEAMS)
        self._trusted_until = now + LEASE_S

    def _lapse(self) -> None:
        self._trusted_until = float("-inf")

    def invalidate_locally(self, topics: set[str]) -> None:
        """Forget what this worker holds for each ``<cache>:<team>`` / ``user:<id>`` topic."""
        for topic in topics:
            kind, _, name = topic.partition(":")
            if kind == USER:
                with contextlib.suppress(ValueError):
                    self.principals.invalidate_key(uuid.UUID(name))
                continue
            cache = self._all.get(kind)
            if cache is None:
                continue
            if name == ALL_TEAMS:
                cache.invalidate(ALL_TEAMS)
            else:
                with contextlib.suppress(ValueError):
                    cache.invalidate(uuid.UUID(name))

    def committed(self, topics: set[str]) -> None:
        """A transaction changed rows behind these topics: forget them here, tell the others."""
        self.invalidate_locally(topics)
        if self._guard is None or not topics:
            return
        self._commits += 1
        for topic in topics:
            # A newer commit replaces the entry, so a publish already on its way (sent before
            # this commit) does not count for it.
            self._outbox[topic] = (self._commits, self._clock())
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(
                self._publish(), name="cache-invalidation-publisher"
            )

    async def _publish(self) -> None:
        # Straight on the client, not through the guard's breaker: an open breaker (tripped by
        # some other call) must not hold an invalidation back for its whole cooldown. Retried
        # until heard, for at most the TTL: by then the others' entries have expired anyway.
        assert self._guard is not None
        client, delay = self._guard.client, 0.05
        while self._outbox:
            topics = dict(self._outbox)
            try:
                await client.publish(CHANNEL, ",".join(sorted(topics)))
            except (RedisError, OSError, TimeoutError) as exc:
                now = self._clock()
                expired = [t for t, (_, at) in topics.items() if now - at >= self._ttl_s]
                for topic in expired:
                    if self._outbox.get(topic) == topics[topic]:
                        del self._outbox[topic]
                if expired:
                    log.warning("gave up publishing a cache invalidation: %r", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            for topic, entry in topics.items():
                if self._outbox.get(topic) == entry:
                    del self._outbox[topic]

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
                    await self._serve(pubsub)
            except (RedisError, OSError, TimeoutError):
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
            finally:
                self._lapse()
            await asyncio.sleep(PROBE_S)  # Redis is down: no cache; try again shortly

    async def _serve(self, pubsub: PubSub) -> None:
        """Apply messages; ping every ``PROBE_S`` so that silence means trouble, not calm."""
        pinged = float("-inf")
        while True:
            if self._clock() - pinged >= PROBE_S:
                await pubsub.ping()  # answered on this connection, after what came before
                pinged = self._clock()
            message = await pubsub.get_message(timeout=PROBE_S)
            if message is None:
                continue
            kind = message["type"]
            if kind == "subscribe":
                self._lapse()  # a new subscription: what came before it may have been missed
            elif kind == "message":
                self.received(message["data"])
            if kind in ("message", "pong", "subscribe"):
                self._heard()

    async def aclose(self) -> None:
        """Stop listening (and publishing, after a short grace)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=2)
        if self._publisher is not None and not self._publisher.done():
            _, stuck = await asyncio.wait([self._publisher], timeout=2)
            for task in stuck:
                task.cancel()


def session_info(caches: Caches) -> dict[str, Any]:
    """The ``info`` of sessions whose commits invalidate ``caches``."""
    return {_CACHES: caches}


# Columns no cache holds: a change to them alone invalidates nothing (an API key's
# ``last_used_at`` is stamped once a minute per key in use).
_UNCACHED = frozenset({"last_used_at"})


def _topic(obj: object) -> str | None:
    """The cache entries a changed row may be behind: ``<cache>:<team>`` or ``user:<id>``."""
    from agentstream.models import Agent, ApiKey, Membership, Memory, User

    if isinstance(obj, Agent):
        return f"agents:{obj.team_id}"
    if isinstance(obj, Membership | ApiKey):
        return f"principals:{obj.team_id}"
    if isinstance(obj, User):
        return f"{USER}:{obj.id}"  # the user's principals, in every team they are in
    if isinstance(obj, Memory):
        return f"memories:{obj.team_id}"
    return None


def _changes_cached(session: Session, obj: object) -> bool:
    """Whether a flushed object's change can matter to a cache."""
    from agentstream.models import User

    if obj in session.deleted:
        return True
    if obj in session.new:
        return not isinstance(obj, User)  # a new user is in no cache yet
    if not session.is_modified(obj):
        return False
    changed = {a.key for a in inspect(obj).attrs if a.history.has_changes()}
    return not changed <= _UNCACHED


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    if _CACHES not in session.info:
        return
    changed = {
        topic
        for obj in (*session.new, *session.dirty, *session.deleted)
        if (topic := _topic(obj)) is not None and _changes_cached(session, obj)
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
