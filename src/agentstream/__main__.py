"""``python -m agentstream`` is the ``agentstream`` command."""

from agentstream.cli import app

app()
