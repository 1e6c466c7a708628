"""Logging: JSON lines for machines, readable lines on a terminal; request id on each."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from agentstream.kit import jsonenc
from agentstream.kit.context import current_request_id

# Record attributes that are not extras; ``color_message`` is uvicorn's ANSI copy of the message.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


_SECRET_QUERY = re.compile(r"((?:token|api_key)=)[^&\s\"']+", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Tokens in WebSocket URLs (``?token=``) must never reach the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return jsonenc.dumps(payload).decode()


class TextFormatter(logging.Formatter):
    """One readable line: ``12:00:01 INFO  agentstream.http  request  status=200 [req]``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED)
        line = f"{stamp} {record.levelname:<7} {record.name}  {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        request_id = current_request_id()
        if request_id != "-":
            line += f"  [{request_id}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def pick_formatter(log_format: str, stream: TextIO) -> logging.Formatter:
    """``json`` or ``text``; ``auto`` is text on a terminal and JSON lines otherwise."""
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    return TextFormatter() if log_format == "text" else JsonFormatter()


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    """Route the package's and uvicorn's logs through one formatter and the redaction filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(pick_formatter(log_format, sys.stderr))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log prints the raw query string, which may hold a WebSocket token.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic announces every plugin it loads; the migrations it runs are what matters.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
