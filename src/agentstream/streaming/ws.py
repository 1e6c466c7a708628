"""The WebSocket transport: auth, control frames, one run at a time, cancel.

A reader loop owns the socket's receive side; a forwarder task streams the active run's
events. Neither holds a database session: each check opens its own short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from agentstream.auth.deps import principal_for
from agentstream.auth.service import Principal, check_credential
from agentstream.chat import events as ev
from agentstream.chat.schemas import ChatRequest, ResumeFrame
from agentstream.chat.service import start_run
from agentstream.db import is_unreachable, transaction
from agentstream.kit import jsonenc
from agentstream.kit.errors import AppError
from agentstream.kit.priority import setup_first
from agentstream.ratelimit.deps import check, client_ip, count_api_request
from agentstream.runs import service as runs
from agentstream.runs.reading import Readable
from agentstream.state import AppState

log = logging.getLogger("agentstream.ws")
F = TypeVar("F")

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHORIZED = 4001
CLOSE_RATE_LIMITED = 4029


class Closed(Exception):
    """The socket is gone or must close with ``code``."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason


@dataclass
class Connection:
    """One socket: its credential, principal and active run."""

    websocket: WebSocket
    state: AppState
    slug: str
    team_override: uuid.UUID | None
    credential: str = ""
    principal: Principal | None = None
    active: Readable | None = None
    owns_active: bool = False  # the active run was started here (not resumed)
    forwarder: asyncio.Task[None] | None = None
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, event: ev.Event) -> None:
        """Send one event; the reader and the forwarder take turns."""
        payload = event.dump_json().decode()
        async with self._send_lock:
            try:
                await self.websocket.send_text(payload)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                raise Closed() from exc

    async def error(self, code: ev.ErrorCode, content: str) -> None:
        """Send an ``error`` event that does not end the connection."""
        await self.send(ev.Error(content=content, error_code=code))

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code`` (best effort: the client may already be gone)."""
        async with self._send_lock:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.websocket.close(code, reason)

    async def authenticate(self, credential: str) -> None:
        """(Re-)check the credential, its expiry and the membership against the database."""
        self.principal = await principal_for(self.state, credential, self.team_override)
        self.credential = credential

    async def receive(self, idle_s: float | None) -> dict[str, Any]:
        """The next frame as a dict; raises ``Closed`` on disconnect or ``TimeoutError``."""
        async with asyncio.timeout(idle_s):
            message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise Closed()
        return dict(message)

    async def first_message_auth(self) -> str:
        """Wait for ``{"type":"auth","token":...}``: the alternative to ``?token=``."""
        try:
            message = await self.receive(self.state.settings.ws_auth_timeout_s)
        except TimeoutError as exc:
            raise Closed(CLOSE_UNAUTHORIZED, "authentication timeout") from exc
        frame = _parse(message.get("text"))
        token = frame.get("token") if frame else None
        if not frame or frame.get("type") != "auth" or not isinstance(token, str) or not token:
            raise Closed(CLOSE_UNAUTHORIZED, "authentication required")
        return token

    # ----------------------------------------------------------------- the session
    async def serve(self) -> None:
        """Handle frames until the client leaves, idles out or loses access."""
        settings = self.state.settings
        while True:
            idle = None if self.active is not None else settings.ws_idle_timeout_s
            try:
                message = await self.receive(idle)
            except TimeoutError as exc:
                raise Closed(CLOSE_NORMAL, "idle timeout") from exc
            text = message.get("text")
            if text is None:
                await self.error("invalid_message", "Binary frames are not supported.")
                continue
            if len(text) > settings.ws_max_frame_bytes or (
                len(text.encode()) > settings.ws_max_frame_bytes
            ):
                raise Closed(CLOSE_TOO_BIG, "frame too large")
            frame = _parse(text)
            try:
                await self.check_access(ping=frame is not None and frame.get("type") == "ping")
                await self.handle(frame)
            except AppError as exc:
                await self.error(ev.error_code(exc.code), exc.message)
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                await self.error("unavailable", "The database is unavailable; retry shortly.")

    async def check_access(self, *, ping: bool = False) -> None:
        """Every frame re-checks the token's expiry, and every frame but a ping the membership
        (a ping does no database work); failure closes with 4001."""
        try:
            if ping:
                check_credential(self.state.settings.resolved_jwt_secret, self.credential)
            else:
                await self.authenticate(self.credential)
        except AppError as exc:
            await self.error("unauthorized", exc.message)
            raise Closed(CLOSE_UNAUTHORIZED, "access ended") from exc

    async def handle(self, frame: dict[str, Any] | None) -> None:
        """Dispatch one parsed client frame."""
        kind = frame.get("type") if frame else None
        if frame is None:
            await self.error("invalid_message", "Frames must be JSON objects.")
        elif kind == "ping":
            await self.send(ev.Pong())
        elif kind == "cancel":
            if self.active is not None:
                await self.state.coordinator.stop(self.active.id)
        elif kind == "message":
            await self.start(frame)
        elif kind == "resume":
            await self.resume(frame)
        else:
            await self.error("invalid_message", f"Unknown message type: {kind!r}.")

    async def _admit(self, parse: Callable[[], F]) -> F | None:
        """The frame parsed, if it is valid and no run is active; else an error is sent."""
        try:
            parsed = parse()
        except ValidationError as exc:
            await self.error("invalid_message", _first_error(exc))
            return None
        if self.active is not None:
            await self.error("busy", "A reply is still streaming; cancel it or wait for done.")
            return None
        return parsed

    async def start(self, frame: dict[str, Any]) -> None:
        """Validate a ``message`` frame and start its run (one at a time)."""
        # ChatRequest holds the rules (1..10,000 characters, a UUID, ...) for every transport.
        request = await self._admit(
            lambda: ChatRequest(
                message=frame.get("content"),
                decisions=frame.get("decisions"),
                conversation_id=frame.get("conversation_id"),
                context=frame.get("context"),
                on_disconnect=frame.get("on_disconnect", "continue"),
                multitask=frame.get("multitask"),
            )
        )
        if request is None:
            return
        assert self.principal is not None
        try:
            # A message is an API request of its team like any other; then the chat gate.
            with setup_first.setup():
                await count_api_request(self.state, self.principal.team_id)
                run = await start_run(self.state, self.principal, self.slug, request)
        except AppError as exc:
            await self.send(ev.app_error(exc))  # conversation_busy names what it is busy with
            return
        self.follow(run, after=0, owner=True)

    async def resume(self, frame: dict[str, Any]) -> None:
        """Make a run of the caller's the socket's active one, replaying events after
        ``after``."""
        resume = await self._admit(lambda: ResumeFrame.model_validate(frame))
        if resume is None:
            return
        assert self.principal is not None
        try:
            async with transaction(self.state.sessions) as session:
                stored = await runs.get_owned(session, self.principal, resume.run_id)
            run = await self.state.coordinator.readable(stored)
        except AppError as exc:
            await self.error(ev.error_code(exc.code), exc.message)
            return
        self.follow(run, after=resume.after, owner=False)

    def follow(self, run: Readable, *, after: int, owner: bool) -> None:
        """Make ``run`` the active one and stream its events after ``after``."""
        self.active, self.owns_active = run, owner
        self.forwarder = asyncio.create_task(self.forward(run, after, owner))

    async def forward(self, run: Readable, after: int, owner: bool) -> None:
        """Stream the run's events to the client until its terminal event; if the client
        leaves first and started the run, the run is detached."""
        try:
            async for batch in run.subscribe(after):
                for event in batch:
                    if event.type in ev.TERMINAL_TYPES:
                        # Free the slot before sending, so a message right after done is
                        # accepted.
                        self.active = None
                    await self.send(event)
        except Closed:
            if owner:
                run.detach()
        finally:
            if self.active is run:
                self.active = None

    async def cleanup(self) -> None:
        """The client is gone: leave the run to finish (or cancel it) and stop our task."""
        run, task = self.active, self.forwarder
        if run is not None and self.owns_active:
            run.detach()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _parse(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = jsonenc.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field_name = ".".join(str(p) for p in error.get("loc", ()))
    field_name = "content" if field_name in ("message", "") else field_name  # the frame's name
    return f"Invalid '{field_name}': {error.get('msg', 'invalid value')}."


async def websocket_session(
    websocket: WebSocket,
    state: AppState,
    slug: str,
    token: str | None,
    team_override: uuid.UUID | None,
) -> None:
    """The whole life of one socket. Accept first, so real clients see our close codes."""
    await websocket.accept()
    conn = Connection(websocket, state, slug, team_override)
    try:
        decision = await check(
            state, f"ws:{client_ip(websocket)}", state.settings.rate_limit_ws_connect
        )
        if not decision.allowed:
            raise Closed(CLOSE_RATE_LIMITED, "too many connections")
        credential = token or await conn.first_message_auth()
        try:
            await conn.authenticate(credential)
        except AppError as exc:
            raise Closed(CLOSE_UNAUTHORIZED, "authentication failed") from exc
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            raise Closed(CLOSE_TRY_AGAIN_LATER, "database unavailable") from exc
        assert conn.principal is not None
        await conn.send(ev.AuthOk(user_id=conn.principal.user.id, team_id=conn.principal.team_id))
        await conn.serve()
    except Closed as closed:
        if closed.code is not None:
            await conn.close(closed.code, closed.reason)
    finally:
        await conn.cleanup()
