"""Shared fixtures: a real `quartchat serve` process on a free port, and clients for it."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

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
from tests.support.redis_cluster import LocalRedisCluster, redis_cluster
from tests.support.tiers import SLOW_MARKERS, TIERS, process_tier, tier_of

# The shared PostgreSQL and Redis (README: what the tests need).
SERVICE_PORTS = {5432: "PostgreSQL", 6379: "Redis"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the markers added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test gets exactly one tier marker (tests/support/tiers.py)."""
    for item in items:
        tier = tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker("slow")


@pytest.fixture(autouse=True)
def _tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that starts a process or reaches a service above its tier fails, naming
    the marker it needs: a tier's run never silently waits on what it should not use.
    The refusal is raised where it happens and again after the test, for code that
    catches it (a broker that retries, a client that degrades)."""
    [tier] = [name for name in TIERS if request.node.get_closest_marker(name)]
    refusals: list[str] = []

    def refuse(what: str, needed: str) -> None:
        refusals.append(f"a {tier} test {what}: mark it {needed} (tests/support/tiers.py)")
        raise AssertionError(refusals[-1])

    start_process = subprocess.Popen.__init__

    def guarded_start(popen: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        command = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        needed = process_tier([os.fsdecode(part) for part in command], options.get("env"))
        if TIERS.index(needed) > TIERS.index(tier):
            refuse(f"started {command[:3]}", needed)
        start_process(popen, args, *rest, **options)

    connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[1] in SERVICE_PORTS:
            refuse(f"connected to {SERVICE_PORTS[address[1]]}", "service")
        connect(sock, address)

    if tier != "browser":
        monkeypatch.setattr(subprocess.Popen, "__init__", guarded_start)
    if tier in ("unit", "server"):
        monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield
    if refusals:
        pytest.fail(refusals[0], pytrace=False)


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


@pytest.fixture(scope="session", name="redis_cluster")
def _redis_cluster() -> Iterator[LocalRedisCluster]:
    """A three-primary Redis Cluster shared by the tests that only talk through it."""
    with redis_cluster() as cluster:
        yield cluster


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
