"""Text every database and JSON encoder accepts: NUL and lone surrogates become U+FFFD."""

from __future__ import annotations

import orjson
import pytest

from agentstream.kit.text import REPLACEMENT, storable, storable_json


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b", "a\ufffdb"),
        ("\x00", "\ufffd"),
        ("é\x00", "é\ufffd"),
        ("half \ud83d of an emoji", "half \ufffd of an emoji"),
        ("\udc80 low, \ud800 high", "\ufffd low, \ufffd high"),
        ("😀 ok \ud800\x00", "😀 ok \ufffd\ufffd"),
    ],
)
def test_nul_and_lone_surrogates_become_the_replacement_character(raw: str, clean: str) -> None:
    assert storable(raw) == clean
    assert orjson.loads(orjson.dumps(storable(raw))) == clean  # encodable now
    clean.encode("utf-8")


@pytest.mark.parametrize("text", ["", "plain ascii", "déjà vu", "日本語 😀", REPLACEMENT])
def test_clean_text_is_returned_as_it_is(text: str) -> None:
    assert storable(text) is text


def test_every_string_of_a_json_value_is_made_storable_keys_included() -> None:
    value = {"k\x00": ["a\ud800", {"n": 1, "s": "ok", "t": ("\x00",)}], "none": None}
    assert storable_json(value) == {
        "k\ufffd": ["a\ufffd", {"n": 1, "s": "ok", "t": ["\ufffd"]}],
        "none": None,
    }
