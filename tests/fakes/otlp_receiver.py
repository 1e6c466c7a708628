"""A local OTLP/HTTP trace receiver: what Jaeger or an OpenTelemetry Collector would be.

It accepts ``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest`` (gzip or not),
decodes it with the OpenTelemetry protobuf classes and keeps every span. Reads are guarded by
a lock and waits are a ``threading.Condition``, so tests on any event loop wait without
sleeping.

Usage::

    with OtlpReceiver() as receiver:
        # OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint
        spans = receiver.wait_for(lambda spans: any(s.name == "chat run" for s in spans))
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it (ids in hex, as backends show them)."""

    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a trace's root span
    name: str
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error (the OTLP enum)
    events: list[tuple[str, dict[str, Any]]]
    service_name: str
    raw: bytes = field(repr=False)  # the span's own protobuf encoding, to search for text


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        status_code=span.status.code,
                        events=[
                            (e.name, {kv.key: _value(kv.value) for kv in e.attributes})
                            for e in span.events
                        ],
                        service_name=str(resource.get("service.name", "")),
                        raw=span.SerializeToString(),
                    )
                )
    return spans


class OtlpReceiver:
    """Start with ``with OtlpReceiver() as receiver:``; export to ``receiver.endpoint``."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or (
                    self.headers.get("Content-Type") != "application/x-protobuf"
                ):
                    self.send_error(404)
                    return
                receiver._received(_decode(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test output is for failures

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter adds ``/v1/traces``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _received(self, spans: list[ReceivedSpan]) -> None:
        with self._changed:
            self.requests += 1
            self.spans.extend(spans)
            self._changed.notify_all()

    def wait_for(
        self, ready: Callable[[list[ReceivedSpan]], bool], timeout: float = 20
    ) -> list[ReceivedSpan]:
        """Every span received, once ``ready`` says they are enough (else ``TimeoutError``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: ready(self.spans), timeout):
                names = [(s.name, s.attributes.get("agentstream.run.id")) for s in self.spans]
                raise TimeoutError(f"spans never became ready; received {names}")
            return list(self.spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans received so far of one trace."""
        with self._changed:
            return [s for s in self.spans if s.trace_id == trace_id]

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
