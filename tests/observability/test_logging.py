"""Logs: readable lines on a terminal, JSON lines otherwise; secrets redacted in both."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agentstream.kit.logging import (
    JsonFormatter,
    RedactSecrets,
    TextFormatter,
    pick_formatter,
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def emit(formatter: logging.Formatter, message: str, **extra: object) -> str:
    record = logging.makeLogRecord(
        {"name": "agentstream.ws", "levelname": "INFO", "levelno": 20, "msg": message} | extra
    )
    assert RedactSecrets().filter(record)
    return formatter.format(record)


def test_text_lines_are_readable_and_redact_tokens() -> None:
    line = emit(TextFormatter(), "GET /v1/agents/demo/ws?token=eyJsecret.value&x=1", status=101)
    assert "\n" not in line
    assert not line.startswith("{")
    assert "INFO" in line
    assert "agentstream.ws" in line
    assert "status=101" in line
    assert "?token=[redacted]&x=1" in line
    assert "eyJsecret" not in line


def test_json_lines_redact_tokens_too() -> None:
    payload = json.loads(emit(JsonFormatter(), "connect ?api_key=ask_live_123"))
    assert payload["message"] == "connect ?api_key=[redacted]"
    assert payload["logger"] == "agentstream.ws"


@pytest.mark.parametrize(
    ("log_format", "stream", "expected"),
    [
        ("auto", Tty(), TextFormatter),
        ("auto", io.StringIO(), JsonFormatter),
        ("json", Tty(), JsonFormatter),
        ("text", io.StringIO(), TextFormatter),
    ],
)
def test_format_follows_setting_and_terminal(
    log_format: str, stream: io.StringIO, expected: type[logging.Formatter]
) -> None:
    assert isinstance(pick_formatter(log_format, stream), expected)
