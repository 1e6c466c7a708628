"""MCP server bodies; ``headers`` are write-only (``has_headers`` says whether any are set)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from agentstream.kit.schemas import Input, Output

SERVER_NAME_PATTERN = r"^[a-z0-9_-]{1,32}$"
ServerName = Annotated[str, StringConstraints(pattern=SERVER_NAME_PATTERN)]
ToolName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# ``"never"`` (default), ``"always"``, or the names of the tools that need approval.
Approval = Literal["never", "always"] | Annotated[list[ToolName], Field(max_length=200)]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
HeaderValue = Annotated[str, StringConstraints(max_length=8192, pattern=r"^[^\r\n\x00]*$")]
Headers = Annotated[dict[HeaderName, HeaderValue], Field(max_length=32)]


def origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and port (the default one when absent) of a valid server URL."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").rstrip(".").lower(), parts.port or default


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in 0..65535
    except ValueError:
        raise ValueError("must have a port between 1 and 65535") from None
    if parts.port == 0:
        raise ValueError("must have a port between 1 and 65535")
    if parts.username is not None or parts.password is not None:
        # It would be shown back in ``url``; credentials belong in the write-only headers.
        raise ValueError("must not carry credentials; send them in headers")
    return url


ServerUrl = Annotated[
    str,
    Field(min_length=1, max_length=2048, json_schema_extra={"pattern": "^https?://[^/@]+"}),
    AfterValidator(_check_url),
]


class McpServerCreate(Input):
    name: ServerName
    url: ServerUrl
    headers: Headers | None = None
    approval: Approval = "never"


class McpServerUpdate(Input):
    """The fields present are changed; ``headers: {}`` (or ``null``) removes the headers."""

    url: ServerUrl | None = None
    headers: Headers | None = None
    approval: Approval | None = None


class McpServerPublic(Output):
    name: str
    url: str
    approval: Approval
    has_headers: bool
    created_at: datetime


class McpToolPublic(Output):
    """One tool of a server, as the server describes it now."""

    name: str
    prefixed_name: str = Field(description="What the model calls it: `<server>__<tool>`.")
    description: str | None
    input_schema: dict[str, Any]
    needs_approval: bool
