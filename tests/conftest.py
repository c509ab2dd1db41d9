"""Shared fixtures: a real `quartchat serve` process on a free port, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser

from tests.support import (
    RunningServer,
    create_postgres_database,
    drop_postgres_database,
    start_server,
)
from tests.support.browser import launch_chromium
from tests.support.protocol_check import FrameCheck


@pytest.fixture(autouse=True, name="frame_check")
def _frame_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrameCheck]:
    """Every frame and close code a test receives, from any `websockets` client or any
    Chromium page, must be one `/asyncapi.json` describes (see tests/support/protocol_check.py)."""
    check = FrameCheck(monkeypatch)
    yield check
    check.check_pages()


@pytest.fixture(scope="session", name="server")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the whole session; tests isolate themselves with fresh room ids."""
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


@pytest.fixture(name="http")
async def _http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as client:
        yield client


@pytest.fixture(name="postgres_url")
async def _postgres_url() -> AsyncIterator[str]:
    """A fresh database on the test PostgreSQL, dropped after the test."""
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


@pytest.fixture(scope="session", name="browser")
async def _browser() -> AsyncIterator[Browser]:
    """One Chromium for the session's page tests; each test opens its own context."""
    async with launch_chromium() as browser:
        yield browser
