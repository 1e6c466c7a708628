"""A real ``agentstream serve`` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """Starts the CLI's ``serve`` with the given environment and waits until it answers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="agentstream-e2e-"))
        self.log_path = self.data_dir / "server.log"
        self.env = {
            **os.environ,
            "AGENTSTREAM_HOST": "127.0.0.1",
            "AGENTSTREAM_PORT": str(self.port),
            "AGENTSTREAM_DATA_DIR": str(self.data_dir),
            "AGENTSTREAM_JWT_SECRET": "e2e-secret-" + "z" * 32,
            "AGENTSTREAM_RATE_LIMIT_CHAT": "0",
            "AGENTSTREAM_RATE_LIMIT_API": "0",
            "AGENTSTREAM_RATE_LIMIT_AUTH": "0",
            "AGENTSTREAM_RATE_LIMIT_WS_CONNECT": "0",
            "AGENTSTREAM_MAX_ACTIVE_RUNS_PER_USER": "0",
            "PYDANTIC_AI_NO_BANNER": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> None:
        """Start and wait until ``/health`` answers; a server that does not is stopped."""
        try:
            self._start(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout_s: float) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agentstream", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its worker processes too can be ended as a group
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)  # polling a starting process; not test synchronisation
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (graceful shutdown) and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode
