"""Base classes for request and response schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# What the OpenAPI document says of every string field of a request body.
NO_NUL = "^[^\x00]*$"


def declare_no_nul(schema: dict[str, Any]) -> None:
    """Give every string property (or string branch of an optional one) the NUL-free pattern,
    so the document says what ``Input`` enforces."""
    for prop in schema.get("properties", {}).values():
        for branch in [prop, *prop.get("anyOf", [])]:
            free_text = not branch.keys() & {"pattern", "format", "enum", "const"}
            if branch.get("type") == "string" and free_text:
                branch["pattern"] = NO_NUL


class Input(BaseModel):
    """Request bodies: unknown fields are an error, strings are trimmed, and no string may
    hold a NUL character (PostgreSQL cannot store one: it would be a 500, not a 422)."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=declare_no_nul
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Output(BaseModel):
    """Response bodies, built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)
