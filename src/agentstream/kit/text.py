"""Text every database and every JSON encoder accepts.

PostgreSQL cannot store a NUL character in a text column, and neither a UTF-8 encoder (the
database drivers, every JSON encoder of our events) nor a database can take a lone surrogate
(U+D800-U+DFFF, which a model's stream can carry, e.g. half of an emoji split across two
chunks). Text from outside (a model's tokens, tool arguments and results) goes through
``storable`` where it enters a reply, so what a client is sent is exactly what is stored; each
such character becomes U+FFFD, the replacement character.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with each NUL and each surrogate replaced by U+FFFD (``text`` itself if clean).

    Cheap for the common case, as it runs on every token: an ASCII string (the check is O(1)
    in CPython) can only hold a NUL, found by a ``memchr``; only other text is searched.
    """
    if text.isascii():
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def storable_json(value: Any) -> Any:
    """A JSON value (tool arguments) with every string in it, keys included, ``storable``."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value
