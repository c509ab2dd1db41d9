"""Requests anyone may send without a budget stay about as cheap as `/health`, through a
real server: `/openapi.json` and `/asyncapi.json` are built once, and a request head
with thousands of headers is refused (431) before it is parsed."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import RunningServer, start_server
from tests.support.echo_timer import echo_timer

# A few times the neighbour's calm p90, or this much on a loaded 2-core machine.
FLOOR = 0.25


@pytest.fixture(name="server", scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("cheap"))
    yield server
    server.stop()


def cpu_seconds(server: RunningServer) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_of(server: RunningServer, requests: int, send: object) -> float:
    """The server's CPU seconds for `requests` calls of `send()`, one after another."""
    assert callable(send)
    before = cpu_seconds(server)
    for _ in range(requests):
        await send()
    return cpu_seconds(server) - before


async def test_api_documents_cost_what_health_does(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        first = await http.get("/openapi.json")
        assert "/rooms/{room_id}/messages" in first.json()["paths"]
        assert "/openapi.json" not in first.json()["paths"]

        async def documents() -> None:
            openapi = await http.get("/openapi.json")
            assert openapi.content == first.content
            assert openapi.headers["content-type"] == "application/json"
            assert openapi.headers["x-content-type-options"] == "nosniff"

        async def health() -> None:
            assert (await http.get("/health")).status_code == 200

        # Before: 18-26 ms of CPU each (on a quiet machine), /health 1-2 ms.
        assert await cpu_of(server, 200, documents) < 3 * await cpu_of(server, 200, health) + 0.1

        asyncapi = await http.get("/asyncapi.json", headers={"host": "chat.example.com:8443"})
        assert asyncapi.json()["servers"]["quartchat"]["host"] == "chat.example.com:8443"
        again = await http.get("/asyncapi.json")
        assert again.json()["servers"]["quartchat"]["host"] == server.http_url.split("//")[1]
        assert again.json()["channels"] == asyncapi.json()["channels"]

        async with echo_timer(server, http) as timer:
            await timer.during("calm", 3)
            timer.phase = "attacked"
            for _ in range(100):  # 50 a second for 2 s; before, the p90 rose to 240-370 ms
                await asyncio.gather(http.get("/openapi.json"), http.get("/asyncapi.json"))
                await asyncio.sleep(0.02)
        assert timer.p90("attacked") <= max(5 * timer.p90("calm"), FLOOR)


def raw_request(server: RunningServer, headers: int, cookies: int = 0) -> bytes:
    """GET /health with `headers` extra headers (or a Cookie of `cookies` cookies) in one
    write; the status line of the answer."""
    lines = b"".join(b"x-%d: y\r\n" % index for index in range(headers))
    if cookies:
        lines += b"cookie: " + b"; ".join(b"c%d=1" % index for index in range(cookies)) + b"\r\n"
    head = b"GET /health HTTP/1.1\r\nhost: a\r\nconnection: close\r\n" + lines + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


async def test_thousands_of_headers_are_refused_before_they_are_parsed(
    server: RunningServer,
) -> None:
    assert raw_request(server, 98) == b"HTTP/1.1 200 "
    assert raw_request(server, 3500) == b"HTTP/1.1 431 "
    # 7,000 cookies in one header: few lines, but far over h11_max_incomplete_size.
    assert raw_request(server, 0, cookies=7000) == b"HTTP/1.1 431 "

    async def flood() -> None:
        await asyncio.to_thread(raw_request, server, 3500)

    async def plain() -> None:
        await asyncio.to_thread(raw_request, server, 0)

    # Before: 13-15 ms of CPU each (30 ms with 7,000 cookies), /health 1-2 ms.
    assert await cpu_of(server, 200, flood) < 3 * await cpu_of(server, 200, plain) + 0.1
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        async with echo_timer(server, http) as timer:
            await timer.during("calm", 3)
            timer.phase = "attacked"
            for _ in range(100):  # 50 a second for 2 s
                await asyncio.gather(flood(), flood())
                await asyncio.sleep(0.02)
        assert timer.p90("attacked") <= max(5 * timer.p90("calm"), FLOOR)
