"""``GET /metrics``: Prometheus text format for operators (kept out of the API document)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from agentstream.kit.errors import Unauthorized
from agentstream.observability import metrics
from agentstream.state import StateDep

router = APIRouter(tags=["observability"])


def _bearer(request: Request) -> str:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request, state: StateDep) -> Response:
    """Every metric; a bearer token when ``AGENTSTREAM_METRICS_TOKEN`` is set."""
    settings = state.settings
    if not settings.metrics:
        raise HTTPException(404, "Not Found")
    expected = settings.metrics_token
    if expected and not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
        raise Unauthorized("A valid metrics token is required.")
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
