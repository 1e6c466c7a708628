"""ORM models of every table, one module per feature; import them from here, which also
registers every table on ``Base.metadata`` (migrations and tests rely on that)."""

from agentstream.models.accounts import ApiKey, Membership, RefreshToken, Team, User
from agentstream.models.agents import Agent
from agentstream.models.approvals import Approval
from agentstream.models.base import (
    LIVE_RUN_STATUSES,
    AgentStatus,
    ApprovalStatus,
    Base,
    MessageRole,
    MessageStatus,
    Role,
    RunStatus,
    Timestamped,
    UTCDateTime,
    utcnow,
)
from agentstream.models.conversations import Conversation, Message, RunRecord
from agentstream.models.mcp import ApprovalSetting, McpServer
from agentstream.models.memory import Memory
from agentstream.models.usage import UsageDaily, UsageLog

__all__ = [
    "LIVE_RUN_STATUSES",
    "Agent",
    "AgentStatus",
    "ApiKey",
    "Approval",
    "ApprovalSetting",
    "ApprovalStatus",
    "Base",
    "Conversation",
    "McpServer",
    "Membership",
    "Memory",
    "Message",
    "MessageRole",
    "MessageStatus",
    "RefreshToken",
    "Role",
    "RunRecord",
    "RunStatus",
    "Team",
    "Timestamped",
    "UTCDateTime",
    "UsageDaily",
    "UsageLog",
    "User",
    "utcnow",
]
