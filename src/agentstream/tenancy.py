"""Who may read what: one visibility rule per team-owned entity, each taking the caller.

Every query of a team-owned row starts from one of these statements, so a row outside
them simply does not exist for the caller (404, never 403). The caller is anything with a
``team_id`` and a ``user_id``: a request's principal, or the identity of a run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Select, and_, or_, select

from agentstream.models import (
    Agent,
    ApiKey,
    Approval,
    Conversation,
    McpServer,
    Membership,
    Memory,
    Message,
    RunRecord,
    UsageDaily,
    UsageLog,
)


class Caller(Protocol):
    """Who is asking: a team and a user in it."""

    @property
    def team_id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID: ...


@dataclass(frozen=True)
class Identity:
    """A caller made of plain ids (the CLI's, for instance)."""

    team_id: uuid.UUID
    user_id: uuid.UUID


def agents(caller: Caller) -> Select[Agent]:
    """The team's agents."""
    return select(Agent).where(Agent.team_id == caller.team_id)


def conversations(caller: Caller) -> Select[Conversation]:
    """The caller's own conversations in the team (other members' are invisible)."""
    return select(Conversation).where(
        Conversation.team_id == caller.team_id, Conversation.user_id == caller.user_id
    )


def messages(caller: Caller, conversation_id: uuid.UUID) -> Select[Message]:
    """Messages of one of the caller's conversations."""
    owned = conversations(caller).where(Conversation.id == conversation_id)
    return select(Message).where(
        Message.team_id == caller.team_id,
        Message.conversation_id.in_(owned.with_only_columns(Conversation.id)),
    )


def runs(caller: Caller) -> Select[RunRecord]:
    """The caller's own runs (nobody else may see, cancel or resume them)."""
    return select(RunRecord).where(
        RunRecord.team_id == caller.team_id, RunRecord.user_id == caller.user_id
    )


def approvals(caller: Caller) -> Select[Approval]:
    """The tool calls waiting for (or decided by) the caller: only a run's owner decides."""
    return select(Approval).where(
        Approval.team_id == caller.team_id, Approval.user_id == caller.user_id
    )


def memory_visibility(caller: Caller, agent_id: uuid.UUID | None = None) -> ColumnElement[bool]:
    """Live memories of the team that are the caller's own or shared; with an agent, those
    that are unscoped or that agent's."""
    condition = and_(
        Memory.team_id == caller.team_id,
        Memory.deleted_at.is_(None),
        or_(Memory.user_id == caller.user_id, Memory.user_id.is_(None)),
    )
    if agent_id is not None:
        condition = and_(condition, or_(Memory.agent_id.is_(None), Memory.agent_id == agent_id))
    return condition


def memories(caller: Caller, agent_id: uuid.UUID | None = None) -> Select[Memory]:
    """The memories the caller (talking to ``agent_id``, when given) may see."""
    return select(Memory).where(memory_visibility(caller, agent_id))


def usage_logs(caller: Caller) -> Select[UsageLog]:
    """The team's usage rows (usage is a team-level report)."""
    return select(UsageLog).where(UsageLog.team_id == caller.team_id)


def usage_daily(caller: Caller) -> Select[UsageDaily]:
    """The team's daily usage totals (the rollup of ``usage_logs``)."""
    return select(UsageDaily).where(UsageDaily.team_id == caller.team_id)


def api_keys(caller: Caller) -> Select[ApiKey]:
    """The team's API keys."""
    return select(ApiKey).where(ApiKey.team_id == caller.team_id)


def mcp_servers(caller: Caller) -> Select[McpServer]:
    """The team's MCP servers."""
    return select(McpServer).where(McpServer.team_id == caller.team_id)


def memberships(caller: Caller) -> Select[Membership]:
    """Memberships of the caller's team."""
    return select(Membership).where(Membership.team_id == caller.team_id)


def own_memberships(user_id: uuid.UUID) -> Select[Membership]:
    """The user's memberships: the teams they can see at all."""
    return select(Membership).where(Membership.user_id == user_id)
