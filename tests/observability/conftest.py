"""Observability fixtures: an owner and agents on a scripted model (as the streaming tests)."""

from tests.streaming.conftest import owner, scripted_agent  # noqa: F401 (fixtures)
