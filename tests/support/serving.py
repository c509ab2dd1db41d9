"""A server of the test's own, with an HTTP client for it, for tests that need settings
the shared session server does not have."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.support.servers import RunningServer, start_server

__all__ = ["served"]


@asynccontextmanager
async def served(
    workdir: Path, env: dict[str, str] | None = None, timeout: float = 10
) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    """`async with served(tmp_path, env) as (server, http)`: a fresh `quartchat serve`,
    stopped on the way out, and a client with `timeout` seconds to answer."""
    server = start_server(workdir, env=env)
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=timeout) as http:
            yield server, http
    finally:
        server.stop()
