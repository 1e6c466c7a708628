"""The serving process: its garbage collector thresholds come from the settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentstream import server
from agentstream.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("restore_gc")
def test_a_serving_process_collects_garbage_at_the_configured_thresholds(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'gc.db'}", tmp_path, gc_threshold=(12_345, 6, 7)
    )
    server._server(settings, "127.0.0.1", 0)
    assert gc.get_threshold() == (12_345, 6, 7)
    assert gc.get_freeze_count() > 0  # the app built so far is out of the collector's walks


def test_pythons_default_thresholds_are_one_variable_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSTREAM_GC_THRESHOLD", "[700, 10, 10]")
    assert Settings().gc_threshold == (700, 10, 10)
