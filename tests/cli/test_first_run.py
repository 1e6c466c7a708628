"""What a newcomer sees: ``agentstream serve`` on an empty database says where the page is."""

from __future__ import annotations

import httpx
import pytest

from agentstream.cli import page_url, welcome
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


def test_serve_on_an_empty_database_prints_the_page_url_with_the_demo_login() -> None:
    first = ServerProcess({})  # make run's defaults: SQLite in a fresh data directory
    first.start()
    try:
        url = f"http://127.0.0.1:{first.port}/"
        expected = f"Open {url} in a browser and sign in with demo@example.com / demo-password."
        assert expected in first.log()
        assert "agentstream chat demo" in first.log()
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200
        assert "<title>agentstream</title>" in page.text
    finally:
        first.stop()


def test_a_later_start_prints_the_page_url_without_a_login() -> None:
    # The database has users by then: no demo account was created, so no login to show.
    assert welcome(None, "0.0.0.0", 8000) == "Open http://127.0.0.1:8000/ in a browser."


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/"),
        ("0.0.0.0", "http://127.0.0.1:8000/"),
        ("::", "http://127.0.0.1:8000/"),
        ("::1", "http://[::1]:8000/"),
        ("chat.example.com", "http://chat.example.com:8000/"),
    ],
)
def test_the_page_url_is_one_a_browser_on_this_machine_can_open(host: str, url: str) -> None:
    assert page_url(host, 8000) == url
