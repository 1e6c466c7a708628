"""The floor pydantic-ai sets: one 100-token ``Agent.iter`` run with no server or database.

Run: ``python -m bench.pydantic_floor``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel


async def _tokens(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    for index in range(100):
        yield f" word{index}"


async def _run(agent: Agent[None, str | None], model: FunctionModel) -> int:
    events = 0
    async with agent.iter("hello", model=model) as run:
        async for node in run:
            if Agent.is_model_request_node(node) or Agent.is_call_tools_node(node):
                async with node.stream(run.ctx) as stream:
                    async for _ in stream:
                        events += 1
    return events


async def measure(runs: int = 50) -> float:
    """CPU seconds per 100-token run."""
    agent: Agent[None, str | None] = Agent(output_type=[str, type(None)])
    model = FunctionModel(stream_function=_tokens, model_name="floor")
    await _run(agent, model)
    start = time.process_time()
    for _ in range(runs):
        await _run(agent, model)
    return (time.process_time() - start) / runs


async def main() -> None:
    per_run = await measure()
    print(
        f"pydantic-ai alone: {per_run * 1000:.1f} ms CPU per 100-token run "
        f"({per_run * 1e4:.0f} µs per token, at most {1 / per_run:.0f} runs/s per core)"
    )


if __name__ == "__main__":
    asyncio.run(main())
