"""The paced token source shared by the reference (the demo model paces the same way)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


async def paced_tokens(count: int, delay_s: float) -> AsyncIterator[str]:
    """``count`` word tokens, ``delay_s`` apart (no sleep when 0), like the demo model."""
    for index in range(count):
        if delay_s and index:
            await asyncio.sleep(delay_s)
        yield f" word{index}"
