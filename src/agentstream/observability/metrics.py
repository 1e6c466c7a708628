"""Prometheus metrics: the metric objects and one small function to record each fact.

Labels are aggregate only (status, direction, scope, route template): never a team, user,
conversation or raw path, so the series count stays bounded and nothing identifies a tenant.

The metric objects live at module level, as prometheus_client intends: a process has one
set of counters however many apps it builds. With ``PROMETHEUS_MULTIPROC_DIR`` set (several
uvicorn workers) prometheus_client writes each process's values to that directory and
``render`` aggregates them.
"""

from __future__ import annotations

import os
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

RateLimitScope = Literal["chat", "api", "auth", "ws", "other"]
RunStatus = Literal["complete", "cancelled", "failed", "interrupted"]
EmbeddingPhase = Literal["query", "index"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

ACTIVE_RUNS = Gauge(
    "agentstream_active_runs",
    "Runs (assistant replies) currently streaming in this deployment.",
    multiprocess_mode="livesum",  # summed over live workers; a dead worker's runs drop out
)
RUNS = Counter("agentstream_runs", "Finished runs by final status.", ["status"])
FIRST_EVENT = Histogram(
    "agentstream_time_to_first_event_seconds",
    "From the start of a run to its first model output (text or tool call).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
TOKENS = Counter("agentstream_tokens", "Model tokens by direction.", ["direction"])
MODEL_ERRORS = Counter("agentstream_model_errors", "Runs that ended with a model error.")
RATE_LIMITED = Counter(
    "agentstream_rate_limited", "Requests rejected by a rate limit, by scope.", ["scope"]
)
HTTP_REQUESTS = Counter(
    "agentstream_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
EMBEDDING_FAILURES = Counter(
    "agentstream_embedding_failures",
    "Embedding calls that failed or timed out (the search fell back to words), by phase.",
    ["phase"],
)
MEMORIES_EMBEDDED = Counter(
    "agentstream_memories_embedded", "Memories embedded (or re-embedded) by the background job."
)
RUN_EVENTS_KEPT = Gauge(
    "agentstream_run_events_kept_bytes",
    "Bytes the finished runs' events kept for resume take (each worker keeps at most "
    "AGENTSTREAM_RUN_EVENTS_MAX_MB).",
    multiprocess_mode="livesum",
)
MEMORIES_TO_EMBED = Gauge(
    "agentstream_memories_to_embed",
    "Memories not yet embedded with the current embedding model (found by words meanwhile).",
    multiprocess_mode="max",
)

_SCOPES: frozenset[str] = frozenset({"chat", "api", "auth", "ws"})


def run_started() -> None:
    """A run began streaming (call exactly once per run, paired with ``run_finished``)."""
    ACTIVE_RUNS.inc()


def run_finished(status: RunStatus) -> None:
    """A run ended with its final message status."""
    ACTIVE_RUNS.dec()
    RUNS.labels(status=status).inc()


def run_events_kept(nbytes: int) -> None:
    """What this worker's finished runs' events, kept for resume, now take."""
    RUN_EVENTS_KEPT.set(nbytes)


def first_event(seconds: float) -> None:
    """Time from a run's start to its first model event."""
    FIRST_EVENT.observe(seconds)


def tokens(input_tokens: int, output_tokens: int) -> None:
    """Tokens a run consumed (its usage), by direction."""
    if input_tokens:
        TOKENS.labels(direction="input").inc(input_tokens)
    if output_tokens:
        TOKENS.labels(direction="output").inc(output_tokens)


def model_error() -> None:
    """A run failed because the model (provider) failed."""
    MODEL_ERRORS.inc()


def rate_limited(scope: str) -> None:
    """A request was rejected by the limit of ``scope`` (``chat``, ``api``, ``auth``, ``ws``)."""
    RATE_LIMITED.labels(scope=scope if scope in _SCOPES else "other").inc()


def http_request(method: str, route: str, status: int) -> None:
    """One HTTP response; ``route`` is the matched path template, never the raw path."""
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()


def embedding_failed(phase: EmbeddingPhase) -> None:
    """An embedding call failed or timed out (``query``: a search; ``index``: the job)."""
    EMBEDDING_FAILURES.labels(phase=phase).inc()


def memories_embedded(count: int, remaining: int) -> None:
    """The background job stored ``count`` vectors; ``remaining`` memories still wait."""
    MEMORIES_EMBEDDED.inc(count)
    MEMORIES_TO_EMBED.set(remaining)


def process_exiting() -> None:
    """A worker is shutting down: drop its live gauges (multiprocess mode only).

    ``livesum`` sums the gauge files of live processes; uvicorn does not tell
    prometheus_client when a worker dies, so each worker says so itself on shutdown.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def render() -> bytes:
    """The Prometheus text exposition, aggregated over workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
