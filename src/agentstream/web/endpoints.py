"""``GET /``: the chat page, and its assets under ``/web/`` (files shipped in the package)."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

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


class _Revalidated(StaticFiles):
    """Static files a browser revalidates (ETag) before each use, so an upgraded server
    never runs with a mix of old and new modules; HTML carries the page's CSP."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        if response.media_type == "text/html":  # the page itself, reached by its file name
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


def assets() -> StaticFiles:
    """The page's scripts and styles, to mount at ``ASSETS_PATH``."""
    return _Revalidated(directory=WEB_DIR)
