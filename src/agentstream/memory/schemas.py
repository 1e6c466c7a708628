"""Memory bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from agentstream.kit.schemas import Input


class MemoryCreate(Input):
    content: str = Field(min_length=1, max_length=2000)
    agent: str | None = Field(default=None, min_length=1, max_length=64)
    importance: int = Field(default=5, ge=1, le=10)
    shared: bool = False


class MemoryPublic(BaseModel):
    id: uuid.UUID
    content: str
    importance: int
    agent: str | None
    shared: bool
    created_at: datetime
    last_used_at: datetime | None
    # Search results only (``GET /v1/memories?q=``): the final score, and whether the memory
    # matched the query's words, its meaning (embedding similarity) or both.
    score: float | None = None
    matched: list[Literal["text", "meaning"]] | None = None


class ExtractedFact(BaseModel):
    """One durable fact an extraction model found in a turn."""

    content: str = Field(min_length=1, max_length=500)
    importance: int = Field(default=5, ge=1, le=10)
