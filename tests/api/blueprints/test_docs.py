"""`/docs` in real headless Chromium: Swagger UI from this server alone, under a CSP."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from tests.support import RunningServer
from tests.support.browser import launch_chromium


@pytest.mark.browser
async def test_docs_render_with_nothing_from_outside(server: RunningServer) -> None:
    requested: list[str] = []
    problems: list[str] = []
    async with launch_chromium() as browser:
        page = await browser.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        await page.goto(server.http_url + "/docs")
        operations = page.locator(".opblock-summary-path")
        await expect(operations.filter(has_text="/rooms/{room_id}/messages").first).to_be_visible(
            timeout=30_000
        )
        assert await operations.count() >= 10
    assert requested and all(url.startswith(server.http_url + "/") for url in requested), requested
    assert problems == [], requested  # a CSP violation would be reported here


async def test_docs_carry_a_content_security_policy(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "cdn" not in page.text and "https://" not in page.text
    assert (await http.get("/docs/swagger-ui-bundle.js")).status_code == 200
    assert (await http.get("/docs/index.html")).status_code == 404
    assert (await http.get("/docs/..%2Fpyproject.toml")).status_code == 404
