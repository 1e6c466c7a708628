"""Tracing: every run is one OpenTelemetry trace, exported over OTLP/HTTP when configured.

A run's trace is a ``chat run`` span (run id, agent, model, status, token counts) whose
children are pydantic-ai's own spans: one per model request (``instrument=`` on the direct
API) and one per tool call (its ``Instrumentation`` capability on the tool manager).

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set; the
other standard ``OTEL_*`` variables (service name, resource attributes, headers, sampler,
batch sizes) are read by the OpenTelemetry SDK itself. Off, nothing here runs at all: no
tracer, no span objects, nothing per run or per token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.models.instrumented import InstrumentationSettings

from agentstream.chat import events as ev
from agentstream.kit.errors import AppError

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from agentstream.conversations.turns import RunIdentity
    from agentstream.settings import Settings

_SCOPE = "agentstream"


def _resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named
    ``agentstream`` unless those name it otherwise."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: "agentstream"}))
    return detected


def _otlp_processor(endpoint: str) -> SpanProcessor:
    # The SDK and the exporter (with its HTTP stack) are only loaded when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))


class RunSpan:
    """The ``chat run`` span of one run; the run's task has it as its current span, so
    pydantic-ai's model and tool spans become its children."""

    def __init__(self, span: Span) -> None:
        self.span = span

    @property
    def trace_id(self) -> str:
        """The trace id as the OTLP backends show it (32 hex digits)."""
        return trace.format_trace_id(self.span.get_span_context().trace_id)

    def active(self) -> contextlib.AbstractContextManager[Span]:
        """Make the span current (tasks started inside inherit it)."""
        return trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )

    def identify(self, identity: RunIdentity) -> None:
        """Name the run once its rows exist."""
        self.span.set_attributes(
            {
                "agentstream.run.id": str(identity.run_id),
                "agentstream.conversation.id": str(identity.conversation_id),
                "agentstream.model": identity.model,
            }
        )

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        """The run's token counts (summed over its model requests)."""
        self.span.set_attributes(
            {"gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}
        )

    def failed(self, error: BaseException) -> None:
        """The model phase raised: keep the exception (type, message, stack) on the span."""
        self.span.record_exception(error)
        self.span.set_attribute("error.type", type(error).__qualname__)

    def refused(self, error: BaseException) -> None:
        """The run never started (its request was refused before streaming): end the span."""
        code = error.code if isinstance(error, AppError) else type(error).__qualname__
        self.span.set_attribute("error.type", code)
        self.span.set_status(Status(StatusCode.ERROR, code))
        self.span.end()

    def end(self, terminal: ev.ChatEvent) -> None:
        """End the span with the run's final status, from its terminal event."""
        if isinstance(terminal, ev.Done):
            self.span.set_attribute("agentstream.run.status", terminal.status.value)
            self.span.set_status(Status(StatusCode.OK))
        elif isinstance(terminal, ev.Error):
            status = "interrupted" if terminal.error_code == "interrupted" else "failed"
            self.span.set_attributes(
                {"agentstream.run.status": status, "agentstream.error_code": terminal.error_code}
            )
            self.span.set_status(Status(StatusCode.ERROR, terminal.error_code))
        self.span.end()


class Tracing:
    """The process's tracer provider (or none: tracing off) and pydantic-ai's settings for it."""

    def __init__(self, provider: TracerProvider | None, *, content: bool = False) -> None:
        self.provider = provider
        self.enabled = provider is not None
        self.instrumentation: InstrumentationSettings | None = None
        self.tool_spans: Instrumentation | None = None
        if provider is not None:
            self._tracer = provider.get_tracer(_SCOPE)
            # Message text (prompts, replies, tool arguments and results, instructions with
            # their memories) only with AGENTSTREAM_TRACE_CONTENT=true. Tool definitions stay
            # in `gen_ai.tool.definitions`; the full request parameters would repeat them.
            self.instrumentation = InstrumentationSettings(
                tracer_provider=provider,
                include_content=content,
                include_binary_content=content,
                include_model_request_parameters=False,
            )
            self.tool_spans = Instrumentation(settings=self.instrumentation)

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing:
        """Tracing to the configured OTLP/HTTP endpoint, or off when none is configured."""
        endpoint = settings.otlp_traces_endpoint
        if endpoint is None:
            return cls(None)
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(resource=_resource())
        provider.add_span_processor(_otlp_processor(endpoint))
        return cls(provider, content=settings.trace_content)

    def start_run(self, agent_slug: str) -> RunSpan | None:
        """A new run's span (a new trace), or ``None`` when tracing is off."""
        if not self.enabled:
            return None
        span = self._tracer.start_span(
            "chat run",
            attributes={"agentstream.agent.slug": agent_slug, "gen_ai.agent.name": agent_slug},
        )
        return RunSpan(span)

    async def aclose(self) -> None:
        """Export what is buffered and stop (the exporter's HTTP calls block: off the loop)."""
        if self.provider is not None:
            await asyncio.to_thread(self.provider.shutdown)


@contextlib.contextmanager
def active(span: RunSpan | None) -> Iterator[None]:
    """``span`` as the current span for the block (nothing when tracing is off)."""
    if span is None:
        yield
        return
    with span.active():
        yield
