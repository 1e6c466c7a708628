"""The generated JWT secret: one for every worker that starts together, private from birth."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agentstream.settings import Settings

WORKERS = 8


def _resolve(data_dir: str, start: Any, out: Any) -> None:
    start.wait()  # every worker reaches for the secret at the same moment
    out.put(Settings(data_dir=Path(data_dir), jwt_secret=None).resolved_jwt_secret)


def test_workers_that_start_together_share_one_secret(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(WORKERS), context.Queue()
    workers = [
        context.Process(target=_resolve, args=(str(tmp_path), start, out)) for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    secrets = [out.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert len(set(secrets)) == 1
    assert secrets[0]
    assert (tmp_path / "jwt_secret").read_text() == secrets[0]
    assert [p.name for p in tmp_path.iterdir()] == ["jwt_secret"]  # no temporary file left


def test_the_secret_file_is_private_from_its_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_chmod(*_: object, **__: object) -> None:
        raise AssertionError("the mode must be right when the file is created, not after")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    previous = os.umask(0o022)  # the usual default, which would make a plain new file 0644
    try:
        secret = Settings(data_dir=tmp_path / "data", jwt_secret=None).resolved_jwt_secret
    finally:
        os.umask(previous)
    path = tmp_path / "data" / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path / "data", jwt_secret=None).resolved_jwt_secret == secret


def test_a_configured_secret_writes_no_file(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, jwt_secret="configured").resolved_jwt_secret == "configured"
    assert not (tmp_path / "jwt_secret").exists()
