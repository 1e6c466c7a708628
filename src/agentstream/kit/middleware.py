"""Pure-ASGI middleware: request ids and a last-resort error body (streaming-friendly)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentstream.db import is_unreachable
from agentstream.kit import jsonenc
from agentstream.kit.context import request_id_var
from agentstream.kit.errors import PayloadTooLarge
from agentstream.observability import metrics

log = logging.getLogger("agentstream.http")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_ID.match(text) else None
    return None


MAX_BODY_BYTES = 1024 * 1024
_LAST_RESORT = {
    True: ("unavailable", "The database is unavailable; retry shortly."),
    False: ("internal_error", "Internal server error."),
}


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestContextMiddleware:
    """Tags every request with ``X-Request-ID``, logs it, caps bodies, and hides tracebacks."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise PayloadTooLarge(f"Request bodies are limited to {self.max_body_bytes} bytes.")
            return message

        try:
            length = _content_length(scope)
            if scope["type"] == "http" and length is not None and length > self.max_body_bytes:
                status = 413
                await _send_error(
                    send,
                    request_id,
                    413,
                    "payload_too_large",
                    f"Request bodies are limited to {self.max_body_bytes} bytes.",
                )
                return
            await self.app(
                scope, capped_receive if scope["type"] == "http" else receive, send_with_id
            )
        except Exception as exc:
            unreachable = is_unreachable(exc)
            if unreachable:
                log.warning("database unavailable: %s", type(exc).__name__)
            else:
                log.exception("unhandled error")
            if scope["type"] == "http" and status == 0:
                status = 503 if unreachable else 500
                await _send_error(send, request_id, status, *_LAST_RESORT[unreachable])
        finally:
            if scope["type"] == "http":
                metrics.http_request(scope.get("method", ""), _route_template(scope), status)
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/agents/{slug}``): bounded, no ids in it."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


async def _send_error(send: Send, request_id: str, status: int, code: str, message: str) -> None:
    body = jsonenc.dumps({"error": code, "message": message, "request_id": request_id})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                *([(b"retry-after", b"1")] if status == 503 else []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
