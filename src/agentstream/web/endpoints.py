"""``GET /``: the chat page, and its assets under ``/web/`` (files shipped in the package)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "static"
ASSETS_PATH = "/web"

# The page loads nothing from elsewhere and talks only to this server; saying so in a CSP
# also turns an accidental CDN reference into a visible failure in the browser test.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def chat_page() -> FileResponse:
    """The chat page (sign in, agents, conversations, streaming replies, stop, resume)."""
    return FileResponse(
        WEB_DIR / "index.html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


def assets() -> StaticFiles:
    """The page's scripts and styles, to mount at ``ASSETS_PATH``."""
    return StaticFiles(directory=WEB_DIR)
