"""Domain errors: each carries its machine code and HTTP status; one handler renders them."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error a client may see."""

    status_code: ClassVar[int] = 500
    code: str = "internal_error"
    default_message: ClassVar[str] = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    default_message = "Authentication required or invalid credentials."


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    default_message = "You do not have permission to do this."


class NotFound(AppError):
    """``<thing>_not_found`` with 404; foreign ids get this too, never 403."""

    status_code = 404

    def __init__(self, thing: str, message: str | None = None) -> None:
        self.code = f"{thing}_not_found"
        super().__init__(message or f"{thing.replace('_', ' ').capitalize()} not found.")


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    default_message = "The resource already exists or conflicts with another."


class AgentInactive(AppError):
    status_code = 409
    code = "agent_inactive"
    default_message = "This agent is paused or archived."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    default_message = "The request is invalid."


class McpHostNotAllowed(AppError):
    status_code = 422
    code = "mcp_host_not_allowed"
    default_message = "The MCP server's host is not in AGENTSTREAM_MCP_ALLOWED_HOSTS."


class McpUnavailable(AppError):
    status_code = 502
    code = "mcp_unavailable"
    default_message = "The MCP server could not be reached."


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests; retry later."


class Unavailable(AppError):
    status_code = 503
    code = "unavailable"
    default_message = "A required service is unavailable."


class TooManyRuns(AppError):
    status_code = 429
    code = "too_many_runs"
    default_message = "Too many replies are streaming at once; wait for one to end."


class RunEventsExpired(AppError):
    status_code = 410
    code = "run_events_expired"
    default_message = "This run's events are no longer kept; its message is stored."


class ConversationBusy(AppError):
    """A new turn for a conversation that is still busy, under ``multitask: "reject"``.

    ``details`` names what it is busy with: ``{run_id}`` of the run in the way (or, for a paused
    turn, ``{approval_ids}``), so a client can follow, cancel or decide it.
    """

    status_code = 409
    code = "conversation_busy"
    default_message = "This conversation is still answering a message."


class ApprovalAlreadyDecided(AppError):
    """A decision on a tool call that was decided already (or has expired)."""

    status_code = 409
    code = "approval_already_decided"
    default_message = "This tool call has already been decided."
