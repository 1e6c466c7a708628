"""``GET /metrics``: Prometheus text, aggregate labels only, optional token, can be off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentstream.observability import metrics
from tests.factories import create_agent, register


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_http_requests_counted_by_route_template_without_ids(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    await create_agent(client, owner, "metered")
    labels = {"method": "POST", "route": "/v1/agents/{slug}/chat", "status": "200"}
    before = sample(await scrape(client), "agentstream_http_requests_total", **labels)
    for _ in range(2):
        chat = await client.post(
            "/v1/agents/metered/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert chat.status_code == 200
    text = await scrape(client)
    assert sample(text, "agentstream_http_requests_total", **labels) == before + 2
    # Aggregate labels only: no team, user, conversation or agent slug anywhere.
    body = chat.json()
    for private in (str(owner.team_id), str(owner.user_id), body["conversation_id"], "metered"):
        assert private not in text


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_auth": 1}])
async def test_rate_limit_rejections_counted_by_scope(client: httpx.AsyncClient) -> None:
    before = sample(await scrape(client), "agentstream_rate_limited_total", scope="auth")
    login = {"email": "nobody@example.com", "password": "wrong-password"}
    assert (await client.post("/v1/auth/login", json=login)).status_code == 401
    assert (await client.post("/v1/auth/login", json=login)).status_code == 429
    text = await scrape(client)
    assert sample(text, "agentstream_rate_limited_total", scope="auth") == before + 1
    assert "127.0.0.1" not in text
    assert "nobody" not in text


def test_rate_limit_scope_label_is_bounded() -> None:
    metrics.rate_limited("auth:1.2.3.4")  # a raw key is never a label value
    assert "1.2.3.4" not in metrics.render().decode()


def test_run_recorders_move_their_metrics() -> None:
    def value(name: str, **labels: str) -> float:
        return sample(metrics.render().decode(), name, **labels)

    active, done = (
        value("agentstream_active_runs"),
        value("agentstream_runs_total", status="complete"),
    )
    tokens_in = value("agentstream_tokens_total", direction="input")
    errors, firsts = (
        value("agentstream_model_errors_total"),
        value("agentstream_time_to_first_event_seconds_count"),
    )
    metrics.run_started()
    assert value("agentstream_active_runs") == active + 1
    metrics.first_event(0.2)
    metrics.tokens(7, 3)
    metrics.model_error()
    metrics.run_finished("complete")
    assert value("agentstream_active_runs") == active
    assert value("agentstream_runs_total", status="complete") == done + 1
    assert value("agentstream_tokens_total", direction="input") == tokens_in + 7
    assert value("agentstream_model_errors_total") == errors + 1
    assert value("agentstream_time_to_first_event_seconds_count") == firsts + 1


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": "s3cret-metrics"}])
async def test_metrics_token_required_when_set(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    await scrape(client, Authorization="Bearer s3cret-metrics")


@pytest.mark.parametrize("settings_overrides", [{"metrics": False}])
async def test_metrics_can_be_turned_off(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_multiprocess_mode_aggregates_workers(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, workers' counts add up; live runs only of live workers."""
    worker = textwrap.dedent(
        """
        import sys
        from agentstream.observability import metrics
        metrics.run_started()
        metrics.run_finished("complete")
        metrics.run_started()
        if sys.argv[1] == "exit":
            metrics.process_exiting()
        """
    )
    reader = (
        "import sys; from agentstream.observability import metrics; "
        "sys.stdout.write(metrics.render().decode())"
    )
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for how in ("exit", "stay"):  # the second one stands for a worker still serving
        subprocess.run([sys.executable, "-c", worker, how], env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert sample(out, "agentstream_runs_total", status="complete") == 2
    # livesum: the worker that shut down no longer counts its in-flight run.
    assert sample(out, "agentstream_active_runs") == 1


async def test_a_chat_moves_the_run_metrics(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    await create_agent(client, owner, "bot")
    before = await scrape(client)
    reply = await client.post("/v1/agents/bot/chat", json={"message": "hi"}, headers=owner.headers)
    assert reply.status_code == 200
    after = await scrape(client)
    for name, labels, moved in (
        ("agentstream_runs_total", {"status": "complete"}, 1),
        ("agentstream_time_to_first_event_seconds_count", {}, 1),
        ("agentstream_active_runs", {}, 0),  # started and finished
    ):
        assert sample(after, name, **labels) == sample(before, name, **labels) + moved, name
    output = reply.json()["usage"]["output_tokens"]
    assert output > 0
    tokens = "agentstream_tokens_total"
    assert (
        sample(after, tokens, direction="output")
        == sample(before, tokens, direction="output") + output
    )
