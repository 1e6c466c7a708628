"""The OpenAPI document, completed: every error status an operation can return, our body.

FastAPI declares only the success response and a 422 with its own body. Generated clients
(openapi-typescript, openapi-python-client) and contract tests (schemathesis) trust the
document, so this module adds, for each operation, the error statuses that apply to it —
derived from what the operation declares (security, path parameters, a request body) plus
a small table for conflicts and the streaming media type — all with ``ErrorBody``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field, TypeAdapter

ERROR_REF = "#/components/schemas/ErrorBody"

_DESCRIPTIONS = {
    400: "The body could not be read.",
    401: "Missing, invalid or expired credentials (`unauthorized`).",
    403: "Authenticated, but the role or team does not allow this (`forbidden`).",
    404: "Not found in the caller's team (`<thing>_not_found`); foreign ids are 404 too.",
    409: "Conflicts with existing state (`conflict`, `agent_inactive`, `conversation_busy`).",
    413: "The request body is too large (`payload_too_large`).",
    422: "The request is invalid (`validation_error`, `mcp_host_not_allowed`); `details.errors` "
    "lists the fields.",
    429: "Rate limited (`rate_limited`, `too_many_runs`); see `Retry-After`.",
    502: "An MCP server could not be reached (`mcp_unavailable`).",
    503: "The database is unreachable or overloaded (`unavailable`); see `Retry-After`.",
}

# Operations that can conflict with existing rows (or an inactive agent), by method and path.
_CONFLICTS = re.compile(
    r"^(POST /v1/auth/register|POST /v1/agents|POST /v1/teams|POST /v1/teams/\{team_id\}/members"
    r"|(PATCH|DELETE) /v1/teams/\{team_id\}/members/\{user_id\}"
    r"|POST /v1/mcp-servers|POST /v1/agents/\{slug\}/chat.*)$"
)
# Unauthenticated operations under the per-IP auth limit.
_AUTH_LIMITED = frozenset({"POST /v1/auth/register", "POST /v1/auth/login"})
# Unauthenticated operations that check a credential in the body.
_BODY_CREDENTIAL = frozenset(
    {"POST /v1/auth/login", "POST /v1/auth/refresh", "POST /v1/auth/logout"}
)
# Operations that look up a named row from the body or query (an agent by slug).
_LOOKUPS = frozenset({"POST /v1/memories", "GET /v1/memories", "GET /v1/conversations"})
# Operations that call out to an MCP server.
_UPSTREAM = frozenset({"GET /v1/mcp-servers/{name}/tools"})
# Server-Sent Events responses whose events are the native chat events (the other event
# streams speak the Vercel AI SDK's or AG-UI's protocol, whose schemas are theirs).
_NATIVE_SSE = re.compile(
    r"^(POST /v1/agents/\{slug\}/chat/stream(/advanced)?|GET /v1/runs/\{run_id\}/events)$"
)
_SSE_MEDIA = "text/event-stream"
# A urlsafe-base64 cursor, as list responses hand it out.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*={0,2}$"  # empty: the first page


class ErrorBody(BaseModel):
    """Every error response: ``{error, message, details?, request_id}``."""

    error: str = Field(description="Machine-readable code, e.g. `validation_error`.")
    message: str = Field(description="Human-readable explanation.")
    details: dict[str, Any] | None = Field(
        default=None, description="Structured details (e.g. the invalid fields); omitted if none."
    )
    request_id: str = Field(description="Equals the response's `X-Request-ID` header.")


def error_statuses(key: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses operation ``key`` (``"POST /v1/agents"``) can return."""
    statuses = {503}  # any operation may find the database gone or the pool exhausted
    params = operation.get("parameters", [])
    if operation.get("security"):
        statuses |= {401, 403, 429}
    if key in _AUTH_LIMITED:
        statuses.add(429)
    if key in _BODY_CREDENTIAL:
        statuses.add(401)
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if params:
        statuses.add(422)
    if key in _LOOKUPS:
        statuses.add(404)
    if _CONFLICTS.match(key):
        statuses.add(409)
    if key in _UPSTREAM:
        statuses.add(502)
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def _type_parameters(operation: dict[str, Any]) -> None:
    for param in operation.get("parameters", []):
        if param.get("in") == "header" and param.get("name") == "X-Team-ID":
            # Validated as a UUID at runtime (422 in our shape); say so for clients.
            # An empty value means "the token's team", like an absent header.
            param["schema"] = {
                "anyOf": [{"type": "string", "format": "uuid"}, {"type": "string", "maxLength": 0}],
                "title": "X-Team-Id",
                "description": "A team the caller belongs to (default: the token's team).",
            }
        elif param.get("in") == "query" and param.get("name") == "cursor":
            param["schema"] = {
                "anyOf": [
                    {"type": "string", "maxLength": 200, "pattern": CURSOR_PATTERN},
                    {"type": "null"},
                ],
                "title": "Cursor",
                "description": "The `cursor` of the previous page.",
            }


def _add_chat_events(schemas: dict[str, Any]) -> None:
    """The native chat event union as ``ChatEvent``, its members beside it as ``ChatEvent<X>``
    (other schemas of the document, the AG-UI ones, already use names such as ``ToolCall``)."""
    from agentstream.chat.events import ChatEvent  # here: kit is imported before chat

    union = TypeAdapter[Any](ChatEvent).json_schema(
        ref_template="#/components/schemas/ChatEvent{model}", mode="serialization"
    )
    for name, definition in union.pop("$defs", {}).items():
        schemas[f"ChatEvent{name}"] = definition
    schemas["ChatEvent"] = union


def _event_stream(data: dict[str, Any], event_id: dict[str, Any]) -> dict[str, Any]:
    """A ``text/event-stream`` body described event by event (OpenAPI 3.2's ``itemSchema``,
    which schemathesis validates each event with): each event's ``data`` and ``id``."""
    return {
        _SSE_MEDIA: {
            "itemSchema": {
                "type": "object",
                "properties": {
                    "data": data,
                    "event": {"type": "string"},
                    "id": event_id,
                    "retry": {"type": "integer"},
                },
                "required": ["data"],
            }
        }
    }


def _type_event_streams(key: str, responses: dict[str, Any]) -> None:
    """Each event of a streamed success response, instead of the whole body as one string."""
    for status, response in responses.items():
        if not status.startswith("2") or _SSE_MEDIA not in response.get("content", {}):
            continue
        if _NATIVE_SSE.match(key):
            data = {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/ChatEvent"},
            }
            # The event's seq: the cursor to resume after it.
            event_id = {"type": "string", "pattern": "^[0-9]+$"}
            response["content"] = _event_stream(data, event_id)
        else:
            response["content"] = _event_stream({"type": "string"}, {"type": "string"})


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add error responses, our 422 body, typed parameters and SSE event schemas in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    _add_chat_events(schemas)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            key = f"{method.upper()} {path}"
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(key, operation)):
                if str(status) == "422" or str(status) not in responses:
                    responses[str(status)] = _error_response(status)
            _type_parameters(operation)
            _type_event_streams(key, responses)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method some documented route accepts for ``path`` (for a 405's ``Allow``).

    Starlette answers 405 from the first route whose path matches, so its ``Allow`` names
    that route's methods only; the document knows them all.
    """
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return methods


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` build (once) the completed document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
