"""The compact form a finished run's events are kept in for resume (``Run`` switches to it
when the run ends)."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

from pydantic import TypeAdapter

from agentstream.chat import events as ev

_EVENT = TypeAdapter[ev.ChatEvent](ev.ChatEvent)


class CompactLog:
    """A finished run's events, kept for resume at a few bytes per event beyond its text.

    A plain text delta (most of a reply) keeps only its text, in one string of all of them,
    and where it ends in that string; any other event keeps its encoded JSON. Events are
    rebuilt when read (with the same ``seq``): only a few objects stay per run, none of them
    per token, so finished runs cost the garbage collector nothing to speak of.
    """

    def __init__(self, events: Sequence[ev.ChatEvent]) -> None:
        pieces: list[str] = []
        ends = array("I")  # 4 bytes per event
        others: dict[int, bytes] = {}
        length = 0
        for index, event in enumerate(events):
            if _plain_delta(event):
                assert isinstance(event, ev.TextDelta)
                pieces.append(event.content)
                length += len(event.content)
            else:
                others[index] = event.dump_json()
            ends.append(length)
        self._text = "".join(pieces)
        self._ends = ends
        self._others = others

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, window: slice) -> list[ev.ChatEvent]:
        return [self._event(i) for i in range(*window.indices(len(self._ends)))]

    def _event(self, index: int) -> ev.ChatEvent:
        encoded = self._others.get(index)
        if encoded is not None:
            return _EVENT.validate_json(encoded)
        start = self._ends[index - 1] if index else 0
        return ev.TextDelta(content=self._text[start : self._ends[index]], seq=index + 1)

    @property
    def nbytes(self) -> int:
        """What it holds in memory, in bytes."""
        return (
            sys.getsizeof(self._text)
            + sys.getsizeof(self._ends)
            + sys.getsizeof(self._others)
            + sum(sys.getsizeof(b) for b in self._others.values())
        )


def _plain_delta(event: ev.ChatEvent) -> bool:
    return (
        type(event) is ev.TextDelta
        and event.run_id is None
        and event.conversation_id is None
        and event.seq is not None
    )
