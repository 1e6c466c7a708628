"""Starting and watching the processes of a benchmark run (servers, load generator)."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    """A server process on 127.0.0.1 (agentstream or the reference)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, health_path: str) -> None:
        env = {**os.environ, **self.env}
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_raise_fd_limit
            )
        # Imports alone take half a minute on a loaded 2-core machine.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + health_path, timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    @property
    def psutil(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def cpu_s(self) -> float:
        """CPU time of the server and its worker processes (``serve --workers N``)."""
        total = 0.0
        main = self.psutil
        for process in [main, *main.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def wait_for_workers(self, workers: int, timeout_s: float = 180) -> set[int]:
        """Wait until ``/health`` has answered from ``workers`` different pids: each new
        connection lands on whichever worker accepts it, and a worker that is still importing
        accepts none."""
        pids: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(pids) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: only workers {pids} answered")
            with httpx.Client(timeout=5) as fresh:  # a new connection each time
                pids.add(int(fresh.get(self.url + "/health").json()["pid"]))
            time.sleep(0.05)  # leave the CPU to the workers still importing
        return pids

    def rss_mb(self) -> float:
        return float(self.psutil.memory_info().rss) / 2**20

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_loadgen(job: dict[str, Any], timeout_s: float = 600) -> dict[str, Any]:
    """Run one job in a fresh load-generator process and return its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class IdleSockets:
    """A load generator holding idle WebSockets open until told to close them."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> int:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("load generator died before opening its sockets")
        return int(json.loads(line)["ready"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("close\n")
        self.process.stdin.flush()
        self.process.wait(120)
