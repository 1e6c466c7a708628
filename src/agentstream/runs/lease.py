"""This worker's liveness lease, renewed on a thread of its own, and the fence a reaper puts up.

Another worker interrupts the runs of a worker whose liveness key is gone. Renewed by the event
loop, the key lapsed whenever the loop stalled longer than the lease (a long synchronous call, a
starved process) and the runs of a live worker were reaped while it was still streaming them.
``Lease`` renews it from a daemon thread with its own synchronous client, so it lapses only when
the process is gone (or cannot reach Redis for a whole lease).

A reaper claims a worker dead with one atomic step (``claim_dead``) that succeeds only while
the key is absent and leaves a ``dead:`` marker holding the reaper's id: a heartbeat that lands
before the claim wins (nothing is reaped), and one that lands after finds the marker and logs
that this worker's runs were reaped (it goes on serving; its new runs are not affected).
"""

from __future__ import annotations

import logging
import os
import threading

import redis
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from agentstream.runs.redis import dead_key, worker_key

log = logging.getLogger("agentstream.runs")

# KEYS = worker key, dead marker; ARGV = reaper id, marker ttl (ms). 1 when claimed dead.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS = worker key, dead marker; ARGV = token, lease (ms). The reaper's id, if fenced.
_BEAT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('GET', KEYS[2])
"""


async def claim_dead(client: Redis, worker_id: str, reaper_id: str, ttl_ms: int) -> bool:
    """Take ``worker_id`` for dead, only if its liveness key is absent right now."""
    script = client.register_script(_CLAIM)
    keys = [worker_key(worker_id), dead_key(worker_id)]
    return bool(await script(keys=keys, args=[reaper_id, max(1, ttl_ms)]))


class Lease:
    """Keeps ``worker_id``'s liveness key (value: this process's token) while the process lives."""

    def __init__(self, url: str, *, worker_id: str, lease_s: float, timeout_s: float) -> None:
        self.worker_id = worker_id
        self.token = f"{os.getpid()}:{worker_id}"
        self._lease_ms = max(1, int(lease_s * 1000))
        self._interval_s = lease_s / 3
        self._keys = [worker_key(worker_id), dead_key(worker_id)]
        # Short timeouts and no retries: a beat that cannot finish well within the lease is
        # worth nothing, and the next one is a third of a lease away.
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._redis.register_script(_BEAT)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"agentstream-lease-{worker_id[:8]}", daemon=True
        )
        self._failing = False
        self._fenced = False
        self._taken = False  # a beat has run: there is a key to drop at shutdown

    def beat(self) -> bool:
        """Renew the key once (blocking: call it off the event loop); False if Redis failed."""
        self._taken = True
        try:
            fenced_by = self._script(keys=self._keys, args=[self.token, self._lease_ms])
        except (RedisError, OSError):
            if not self._failing:
                self._failing = True
                log.warning("cannot renew this worker's liveness lease in Redis", exc_info=True)
            return False
        self._failing = False
        if fenced_by is not None and not self._fenced:
            reaper = fenced_by.decode() if isinstance(fenced_by, bytes) else str(fenced_by)
            log.error(
                "this worker was taken for dead by worker %s, which interrupted its runs "
                "(its lease lapsed: Redis out of reach for longer than the lease)",
                reaper,
            )
        self._fenced = fenced_by is not None
        return True

    def start(self) -> None:
        """Renew every third of the lease from now on, whatever the event loop is doing."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop renewing and drop the key, so the others know at once (blocking, bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("the liveness lease thread did not stop in time")
        try:
            if self._taken:  # a process that never served (a CLI command) never touches it
                self._redis.delete(self._keys[0])
        except (RedisError, OSError):
            pass  # it lapses by itself within a lease
        finally:
            self._redis.close()
