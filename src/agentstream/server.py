"""Serving the app with uvicorn, with a shutdown that ends every stream properly.

uvicorn's own shutdown closes WebSockets (1012) and then cancels streaming responses after its
grace period, before the app's lifespan may act: clients would be cut with no terminal event.
Here the runs are interrupted first — each reply is stored ``interrupted`` and every open
stream sends its terminal ``error`` (``interrupted``) — and only then does uvicorn close what
is left.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from agentstream.app import create_app
from agentstream.settings import Settings
from agentstream.state import AppState


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


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the server until SIGINT/SIGTERM."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        ws_max_size=settings.ws_max_frame_bytes,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    _Server(config, app, settings.shutdown_grace_s).run()
