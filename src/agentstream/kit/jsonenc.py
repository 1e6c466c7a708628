"""Fast JSON encoding (orjson): UUIDs and datetimes serialise natively."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Encode to compact JSON bytes on one line."""
    return orjson.dumps(value)


def loads(data: str | bytes) -> Any:
    """Decode JSON text or bytes."""
    return orjson.loads(data)
