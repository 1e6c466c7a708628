"""Tracing's cost: the same SSE load on two SQLite servers, one without tracing and one
exporting every run's trace over OTLP/HTTP to a local receiver, measured in alternating rounds.

The receiver (a thread of this process) decodes each export request and counts the spans, so
the row also says that the traces really left the server.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import scenarios as sc
from bench.procs import Server
from bench.runs import alternating_rounds, merged, started

CONFIGS = ("off", "otlp")


class _Sink:
    """An OTLP/HTTP receiver that counts the spans it is sent."""

    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                count = sum(
                    len(scope.spans)
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                )
                with sink._lock:
                    sink.spans += count
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _servers(env: dict[str, str], work: Path, sink: _Sink) -> Iterator[tuple[str, Server]]:
    for name in CONFIGS:
        data = work / f"tracing-{name}-{uuid.uuid4().hex[:6]}"
        own = {
            **env,
            "AGENTSTREAM_DATA_DIR": str(data),
            "AGENTSTREAM_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'bench.db'}",
        }
        if name == "otlp":
            own["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
        server = sc.agentstream_server(f"agentstream-tracing-{name}", 0, own)
        # The "off" side must not pick up an exporter from the caller's environment.
        server.env["OTEL_SDK_DISABLED"] = "true" if name == "off" else "false"
        yield name, server


def _merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return merged(rounds) | {"server_cpu_s": sum(r["server_cpu_s"] for r in rounds)}


def run(env: dict[str, str], work: Path, profile: sc.Profile, results: dict[str, Any]) -> None:
    """Measure and store ``tracing:<config>`` (and the spans the receiver got)."""
    clients = profile.runs_clients
    sink = _Sink()
    try:
        with started(_servers(env, work, sink)) as servers:
            targets = {
                name: sc.agentstream_target(server, sc.prepare_agentstream(server, 10))
                for name, server in servers.items()
            }
            rounds = alternating_rounds(targets, profile, clients, "tracing")
        # The servers have stopped: their batch processors flushed what was left.
        for name, measured in rounds.items():
            results[f"tracing:{name}"] = _merge(measured)
        results["tracing:otlp"]["spans_received"] = sink.spans
    finally:
        sink.close()
