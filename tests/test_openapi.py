"""The OpenAPI document declares every status an operation can return, with our error body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import create_agent, register

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def statuses(document: dict[str, Any], method: str, path: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("post", "/v1/agents", {"201", "401", "403", "409", "413", "422", "429", "503"}),
        ("get", "/v1/agents/{slug}", {"200", "401", "403", "404", "429", "503"}),
        ("delete", "/v1/conversations/{conversation_id}", {"204", "401", "404", "503"}),
        ("post", "/v1/agents/{slug}/chat", {"200", "404", "409", "413", "422", "429"}),
        ("post", "/v1/auth/login", {"200", "401", "422", "429"}),
        ("post", "/v1/auth/refresh", {"200", "401", "422"}),
        ("get", "/v1/agents", {"200", "401", "422", "429"}),
    ],
)
def test_operations_declare_their_error_statuses(
    document: dict[str, Any], method: str, path: str, expected: set[str]
) -> None:
    assert expected <= statuses(document, method, path)


def test_every_error_response_uses_our_error_body(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and (method, path) != ("get", "/ready"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (method, path, status)
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert set(error_body["required"]) == {"error", "message", "request_id"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_team_header_and_cursor_are_typed(document: dict[str, Any]) -> None:
    params = {p["name"]: p for p in document["paths"]["/v1/agents"]["get"]["parameters"]}
    assert {"type": "string", "format": "uuid"} in params["X-Team-ID"]["schema"]["anyOf"]
    cursor = params["cursor"]["schema"]["anyOf"][0]
    assert cursor["pattern"]


def test_sse_operations_declare_each_event_not_a_string(document: dict[str, Any]) -> None:
    native = (
        ("post", "/v1/agents/{slug}/chat/stream"),
        ("post", "/v1/agents/{slug}/chat/stream/advanced"),
        ("get", "/v1/runs/{run_id}/events"),
    )
    for method, path in native:
        content = document["paths"][path][method]["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"]
        assert "schema" not in content["text/event-stream"]  # not `type: string`
        data = content["text/event-stream"]["itemSchema"]["properties"]["data"]
        assert data["contentMediaType"] == "application/json"
        assert data["contentSchema"] == {"$ref": "#/components/schemas/ChatEvent"}
    union = document["components"]["schemas"]["ChatEvent"]
    assert set(union["discriminator"]["mapping"]) >= {"text_delta", "done", "error", "usage"}
    for ref in union["discriminator"]["mapping"].values():
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]
    for method, path in (
        ("post", "/v1/agents/{slug}/chat/ui"),
        ("post", "/v1/agents/{slug}/chat/ag-ui"),
    ):
        content = document["paths"][path][method]["responses"]["200"]["content"]
        assert "itemSchema" in content["text/event-stream"]


async def test_bad_team_header_is_our_422(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.get("/v1/agents", headers=owner.headers | {"X-Team-ID": "nope"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_405_allow_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    response = await client.put("/v1/agents/bot", headers=owner.headers)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "PATCH", "DELETE"} <= allowed
    listing = await client.put("/v1/agents", headers=owner.headers)
    assert {"GET", "POST"} <= {m.strip() for m in listing.headers["allow"].split(",")}
