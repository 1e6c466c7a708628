"""Schemathesis over the live OpenAPI document of a real server, with a real token.

Every documented operation gets a few generated requests (positive and negative); each
response must not be a 5xx and must conform to the document: a declared status code, a
body matching its schema, the declared content type. Bounded and derandomised, so the run
is the same every time and takes well under a minute.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from agentstream.app import create_app
from agentstream.settings import Settings
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

# Operations that would destroy the fixture's own credentials if a generated id happened to
# match: they are exercised by their own tests instead (members, keys, logout).
_DESTRUCTIVE = r"^/v1/teams/\{team_id\}/members/\{user_id\}$"


@pytest.fixture(scope="session")
def contract_headers(server: ServerProcess) -> dict[str, str]:
    """A registered owner's bearer token (and an agent, so chat paths can succeed)."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        registered = http.post(
            "/v1/auth/register",
            json={"email": "contract@example.com", "password": "contract-password"},
        )
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        agent = http.post(
            "/v1/agents", json={"slug": "demo", "name": "Demo", "model": "demo"}, headers=headers
        )
        assert agent.status_code == 201, agent.text
    return headers


def _unexpressible(case: Any) -> bool:
    """Rules the document cannot state, so a 422 for schema-valid input is right.

    A cursor is opaque (a well-formed one may name no position), usage's ``from < to`` is
    a cross-field rule, an agent's model provider (and MCP servers) must exist in this
    deployment, an MCP server's host must be in its allow-list, and the UI protocols' bodies
    must end with the user's new message (their schemas are the SDKs'); "positive data
    accepted" would call those 422s failures.
    """
    if "cursor" in (case.query or {}) or case.path == "/v1/usage":
        return True
    if case.path.endswith(("/chat/ui", "/chat/ag-ui")):
        return True
    if case.path in ("/v1/mcp-servers", "/v1/mcp-servers/{name}"):
        return case.method in ("POST", "PATCH")
    return case.path in ("/v1/agents", "/v1/agents/{slug}") and case.method in ("POST", "PATCH")


def _document() -> dict[str, Any]:
    # Built from code at collection time, so each operation is its own test; the live
    # server serves the same document (asserted below).
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


schema = schemathesis.openapi.from_dict(_document()).exclude(path_regex=_DESTRUCTIVE)


def test_the_live_document_is_the_one_tested(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/openapi.json", timeout=30).json() == _document()


@schema.parametrize()
@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_document(
    case: Any, server: ServerProcess, contract_headers: dict[str, str]
) -> None:
    excluded = [positive_data_acceptance] if _unexpressible(case) else []
    # Raises (failing the test) unless the status is declared and the body and content type
    # match the document; schemathesis' own checks include "no 5xx", asserted here too.
    response = case.call_and_validate(
        base_url=server.url, headers=contract_headers, timeout=30, excluded_checks=excluded
    )
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(
    "path", ["/v1/agents/{slug}/chat/stream", "/v1/agents/{slug}/chat/stream/advanced"]
)
def test_event_streams_conform_event_by_event(
    path: str, server: ServerProcess, contract_headers: dict[str, str]
) -> None:
    # schemathesis validates each event of a text/event-stream against the item schema (and
    # its data against the ChatEvent union): a stream typed as one string fails every event.
    case = schema[path]["POST"].Case(path_parameters={"slug": "demo"}, body={"message": "hi"})
    response = case.call_and_validate(base_url=server.url, headers=contract_headers, timeout=30)
    assert response.status_code == 200
    assert response.text.count("data: ") >= 3
    run_id = response.headers["x-run-id"][0]
    replay = schema["/v1/runs/{run_id}/events"]["GET"].Case(path_parameters={"run_id": run_id})
    replayed = replay.call_and_validate(base_url=server.url, headers=contract_headers, timeout=30)
    assert replayed.status_code == 200
    assert replayed.text.startswith("id: 1\ndata: ")  # (schemathesis reads a stream's start)
