"""agentstream: a self-hostable, multi-tenant server for AI agents with real-time streaming."""

__version__ = "0.1.0"
