"""Per-request context (request id) carried by a contextvar, for logs and error bodies."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str:
    """The id of the request being served, ``-`` outside one."""
    return request_id_var.get()
