"""Exception handlers rendering the one error shape of the API."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException

from agentstream.db import DRIVER_CONNECTION_ERRORS, is_unreachable
from agentstream.kit.context import current_request_id
from agentstream.kit.errors import AppError
from agentstream.kit.openapi import allowed_methods

log = logging.getLogger("agentstream.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error shape: ``{error, message, details?, request_id}``."""
    body: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    body["request_id"] = current_request_id()
    return body


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), exc.status_code, headers=exc.headers
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse(
        error_body("validation_error", "The request is invalid.", {"errors": errors}), 422
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, RecursionError):
        # FastAPI parses bodies with the stdlib, which gives up on very deep nesting with a
        # RecursionError that it reports as a 400; for the client it is invalid input.
        details = {
            "errors": [{"loc": ["body"], "msg": "JSON nested too deeply", "type": "json_invalid"}]
        }
        return JSONResponse(error_body("validation_error", "The request is invalid.", details), 422)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        allowed |= allowed_methods(request.app, request.url.path)
        headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse(error_body(code, message), exc.status_code, headers=headers)


def unavailable_response() -> JSONResponse:
    """503 ``unavailable``: the database is unreachable or overloaded; retrying will work."""
    return JSONResponse(
        error_body("unavailable", "The database is unavailable; retry shortly."),
        503,
        headers={"Retry-After": "1"},
    )


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    if not is_unreachable(exc):
        log.error("database error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "Internal server error."), 500)
    # Refused, restarting, dropped, or the pool / SQLite's write lock stayed busy too long.
    log.warning("database unavailable: %s", type(exc).__name__)
    return unavailable_response()


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on the app."""
    for error in (DBAPIError, SATimeoutError, OSError, *DRIVER_CONNECTION_ERRORS):
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
