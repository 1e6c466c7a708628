"""Browser fixtures: a real server with a slow demo model, and headless Chromium from the OS.

Chromium comes from the distribution (``apt-get install chromium``), driven by Playwright
for Python; Playwright's own browser download is not used. Without Chromium the browser
tests skip locally and fail with ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import unavailable
from tests.e2e.server import ServerProcess, free_port

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


def chromium_path() -> str | None:
    """The system Chromium (``AGENTSTREAM_TEST_CHROMIUM`` overrides), if installed."""
    configured = os.environ.get("AGENTSTREAM_TEST_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page_server(database_url: str) -> Iterator[ServerProcess]:
    """``agentstream serve`` whose demo model is slow enough to stop or reload mid-reply.

    Its OpenAI-compatible provider is a port nobody listens on, so an ``openai:`` agent's
    reply ends in a ``model_error`` event.
    """
    process = ServerProcess(
        {
            "AGENTSTREAM_DATABASE_URL": database_url,
            "AGENTSTREAM_DEMO_TOKEN_DELAY_MS": "30",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
            "OPENAI_API_KEY": "unused",
        }
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    if executable is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where a test saves its screenshots (git-ignored); the path is printed."""
    name = request.node.name.replace("[", "-").replace("]", "")
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder
