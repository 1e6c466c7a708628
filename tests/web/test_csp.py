"""Every HTML response of the chat page carries its Content-Security-Policy, whichever URL
reaches it (``/`` or the file's own path under ``/web/``)."""

from __future__ import annotations

import httpx

from agentstream.web.endpoints import ASSETS_PATH, CONTENT_SECURITY_POLICY, WEB_DIR


async def test_every_html_response_carries_the_pages_csp(client: httpx.AsyncClient) -> None:
    paths = ["/"] + [
        f"{ASSETS_PATH}/{file.relative_to(WEB_DIR).as_posix()}"
        for file in sorted(WEB_DIR.rglob("*"))
        if file.is_file()
    ]
    html = []
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, path
        if response.headers["content-type"].startswith("text/html"):
            html.append(path)
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    assert f"{ASSETS_PATH}/index.html" in html
    assert "/" in html
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
