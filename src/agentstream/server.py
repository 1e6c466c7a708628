"""Serving the app with uvicorn: one process, or N workers on one port.

uvicorn's own shutdown closes WebSockets (1012) and then cancels streaming responses after its
grace period, before the app's lifespan may act: clients would be cut with no terminal event.
Here the runs are interrupted first — each reply is stored ``interrupted`` and every open
stream sends its terminal ``error`` (``interrupted``) — and only then does uvicorn close what
is left.
"""

from __future__ import annotations

import gc
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import multiprocess

from agentstream.app import create_app
from agentstream.kit.wsprotocol import WebSocketProtocol
from agentstream.settings import Settings
from agentstream.state import AppState


class WorkersNeedRedis(Exception):
    """More than one worker was asked for without Redis to share runs and limits."""

    @staticmethod
    def message(workers: int) -> str:
        """What to set, said plainly."""
        return (
            f"{workers} workers need Redis to share runs, cancels and limits: set "
            "AGENTSTREAM_REDIS_URL (e.g. redis://127.0.0.1:6379/0), and use PostgreSQL "
            "(AGENTSTREAM_DATABASE_URL=postgresql+asyncpg://...)."
        )


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while the runs wind down
        state: AppState | None = getattr(self._app.state, "agentstream", None)
        if state is not None:
            await state.runs.interrupt_all(self._grace_s)
        await super().shutdown(sockets)


def _config(settings: Settings, app: FastAPI | str, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        ws=WebSocketProtocol,
        ws_max_size=settings.ws_max_frame_bytes,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


def _server(settings: Settings, host: str, port: int) -> _Server:
    app = create_app(settings)
    _tune_gc(settings)
    return _Server(_config(settings, app, host, port), app, settings.shutdown_grace_s)


def _tune_gc(settings: Settings) -> None:
    """Collect cyclic garbage less often than Python's defaults in a serving process.

    Streaming allocates a few objects per token, so with the default thresholds (700, 10, 10)
    the collector runs hundreds of times a second under load, and every so often walks every
    live object, including what finished runs keep for resumes (a few objects each, see
    ``runs.compact.CompactLog``). Measured on a burst of
    200 new streams (PostgreSQL + Redis, one worker): first event p99 1.1-1.4 s with the
    defaults, 0.7-0.8 s with (50000, 20, 100). What exists once the app is built (modules,
    routes, settings) is frozen out of the collector's walks for good — after a collection,
    so that the garbage of start-up is freed rather than frozen with it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*settings.gc_threshold)


class _WorkerProcess(multiprocess.Process):
    """uvicorn's worker process, serving our server (with its shutdown) instead of its own."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            # In the child: its own settings (from the environment) and app.
            self._server = _server(Settings(), self.config.host, self.config.port)
        return self._server

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        _ = self.server  # built before the health-check thread can race to build another
        super().target(sockets)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the server until SIGINT/SIGTERM, in ``workers`` processes sharing the port."""
    if workers <= 1:
        _server(settings, host, port).run()
        return
    if not settings.redis_url:
        raise WorkersNeedRedis(WorkersNeedRedis.message(workers))
    config = _config(settings, "agentstream.app:create_app", host, port)
    config.workers = workers
    # A worker imports the whole app before it can answer the supervisor's health pings; on
    # a busy machine that takes well over uvicorn's default of 5 s, and it would be killed.
    config.timeout_worker_healthcheck = 60
    # uvicorn's supervisor (which also restarts a worker that dies) builds its workers by
    # this module-level name and has no other hook for the server they run.
    multiprocess.Process = _WorkerProcess  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
