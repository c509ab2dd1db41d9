"""Behind a real TLS-terminating nginx configured like Railway's edge: every client is
known by its own address, through https:// and wss://, in Python and in Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import (
    PROJECT_ROOT,
    RunningServer,
    create_room,
    create_user,
    receive_messages,
    receive_type,
    start_server,
)
from tests.support.browser import launch_chromium
from tests.support.edge import Edge, bound_socket

TRUST_THE_EDGE = {"FORWARDED_ALLOW_IPS": "127.0.0.1"}


@contextmanager
def behind_edge(
    tmp_path: Path, env: dict[str, str] | None = None, args: list[str] | None = None
) -> Iterator[tuple[RunningServer, Edge]]:
    server = start_server(tmp_path, env={**TRUST_THE_EDGE, **(env or {})}, args=args)
    try:
        edge = Edge(tmp_path / "nginx", server.port)
        try:
            yield server, edge
        finally:
            edge.stop()
    finally:
        server.stop()


def https_client(edge: Edge, source: str = "127.0.0.1") -> httpx.AsyncClient:
    """An httpx client of the edge, its connections made from loopback address `source`."""
    transport = httpx.AsyncHTTPTransport(local_address=source, verify=edge.ssl_context())
    return httpx.AsyncClient(base_url=edge.https_url, transport=transport, timeout=30)


def wss(edge: Edge, path: str, source: str = "127.0.0.1") -> Any:
    """`async with wss(...) as ws:` a chat socket through the edge, from `source`."""
    return connect(
        f"{edge.wss_url}{path}",
        sock=bound_socket(source, edge.port),
        ssl=edge.ssl_context(),
        server_hostname="127.0.0.1",
        open_timeout=15,
    )


def logged_clients(server: RunningServer, request_line: str) -> list[str]:
    """The client address of each access log line for `request_line` (`POST /users`)."""
    clients = []
    for line in server.log().splitlines():
        if f'"{request_line}' in line:
            match = re.search(r"hypercorn\.access \[\S+\] ([0-9.]+?)(?::\d+)? - ", line)
            assert match, line
            clients.append(match.group(1))
    return sorted(clients)


async def assert_logged(server: RunningServer, request_line: str, expected: list[str]) -> None:
    """Wait for the access log to show exactly `expected` clients for `request_line`
    (Hypercorn writes a line once the response is sent, so it may trail the client)."""
    deadline = asyncio.get_running_loop().time() + 10
    while logged_clients(server, request_line) != expected:
        if asyncio.get_running_loop().time() > deadline:
            assert logged_clients(server, request_line) == expected
        await asyncio.sleep(0.05)


@pytest.mark.service
async def test_rest_and_a_socket_round_trip_through_https_and_wss(tmp_path: Path) -> None:
    with behind_edge(tmp_path) as (_server, edge):
        async with https_client(edge) as http:
            assert (await http.get("/health")).json()["status"] == "ok"
            room, user = await create_room(http), await create_user(http)
            async with wss(edge, f"/ws/{room['id']}/{user['id']}") as ws:
                await ws.send(json.dumps({"content": "through the edge"}))
                [echo] = await receive_messages(ws, 1)
                assert echo["content"] == "through the edge"
                posted = await http.post(
                    f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": "rest"}
                )
                assert posted.status_code == 201
                [relayed] = await receive_messages(ws, 1)
                assert relayed["content"] == "rest"


@pytest.mark.browser
async def test_chromium_page_and_its_wss_socket_through_the_edge(tmp_path: Path) -> None:
    with behind_edge(tmp_path) as (_server, edge):
        async with https_client(edge) as http:
            room, user = await create_room(http), await create_user(http)
        async with launch_chromium() as browser:
            context = await browser.new_context(ignore_https_errors=True)
            page = await context.new_page()
            response = await page.goto(f"{edge.https_url}/")
            assert response is not None and response.status == 200
            received = await page.evaluate(
                """([url, content]) => new Promise((resolve, reject) => {
                    const ws = new WebSocket(url);
                    ws.onopen = () => ws.send(JSON.stringify({content}));
                    ws.onmessage = (event) => {
                        const frame = JSON.parse(event.data);
                        if (frame.type === "message") { ws.close(); resolve(frame); }
                    };
                    ws.onclose = (event) => reject(new Error("closed " + event.code));
                    setTimeout(() => reject(new Error("no message in 20 s")), 20000);
                })""",
                [f"{edge.wss_url}/ws/{room['id']}/{user['id']}", "from Chromium"],
            )
            assert received["content"] == "from Chromium"
            assert received["user_id"] == user["id"]


@pytest.mark.service
async def test_sigterm_1012_reaches_the_wss_client_through_the_edge(tmp_path: Path) -> None:
    with behind_edge(tmp_path) as (server, edge):
        async with https_client(edge) as http:
            room, user = await create_room(http), await create_user(http)
        async with wss(edge, f"/ws/{room['id']}/{user['id']}") as ws:
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong")
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 15)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert await asyncio.to_thread(server.stop) == 0


@pytest.mark.service
async def test_clients_are_limited_and_logged_by_their_own_address(tmp_path: Path) -> None:
    limits = {"CREATIONS_BURST": "3", "CREATIONS_PER_MINUTE": "1", "MAX_SOCKETS_PER_IP": "1"}
    with behind_edge(tmp_path, limits) as (server, edge):
        async with (
            https_client(edge, "127.0.0.2") as first,
            https_client(edge, "127.0.0.3") as second,
        ):
            room = await create_room(first)
            users = [await create_user(first) for _ in range(2)]
            refused = await first.post("/users", json={"username": "one too many"})
            assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
            assert int(refused.headers["retry-after"]) >= 1
            # Another address behind the same proxy has its own budget.
            other = await create_user(second)
            for _ in range(2):
                await create_user(second)
            assert (await second.post("/users", json={"username": "x"})).status_code == 429

            async with (
                wss(edge, f"/ws/{room['id']}/{users[0]['id']}", "127.0.0.2") as mine,
                wss(edge, f"/ws/{room['id']}/{users[1]['id']}", "127.0.0.2") as one_too_many,
                wss(edge, f"/ws/{room['id']}/{other['id']}", "127.0.0.3") as theirs,
            ):
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(one_too_many.recv(), 15)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
                for ws in (mine, theirs):
                    await ws.send('{"type": "ping"}')
                    await receive_type(ws, "pong")

        await assert_logged(server, "POST /users", ["127.0.0.2"] * 3 + ["127.0.0.3"] * 4)
        # Not the startup probe's own sockets (GET /ws/quartchat-probe-…), before any client.
        await assert_logged(server, "GET /ws/room", ["127.0.0.2"] * 2 + ["127.0.0.3"])


@pytest.mark.service
async def test_headers_a_client_sends_are_not_believed(tmp_path: Path) -> None:
    spoofed = {"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9", "Forwarded": "for=10.9.9.9"}
    with behind_edge(tmp_path, {"CREATIONS_BURST": "2", "CREATIONS_PER_MINUTE": "1"}) as (
        server,
        edge,
    ):
        # Straight to quartchat, from an address it does not trust.
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=server.http_url, transport=transport) as direct:
            for i in range(2):
                headers = {name: f"10.9.9.{i}" for name in ("X-Forwarded-For", "X-Real-IP")}
                created = await direct.post("/users", json={"username": "d"}, headers=headers)
                assert created.status_code == 201
            refused = await direct.post("/users", json={"username": "d"}, headers=spoofed)
            assert refused.status_code == 429
        # Through the edge, a forged X-Forwarded-For is only the left-most hop.
        async with https_client(edge, "127.0.0.3") as proxied:
            created = await proxied.post("/users", json={"username": "p"}, headers=spoofed)
            assert created.status_code == 201
        await assert_logged(server, "POST /users", ["127.0.0.2"] * 3 + ["127.0.0.3"])


@pytest.mark.service
async def test_a_users_flood_over_wss_and_https_is_refused_but_not_their_neighbours(
    tmp_path: Path,
) -> None:
    limits = {"RATE_LIMIT_PER_SECOND": "0.01", "RATE_LIMIT_BURST": "3"}
    with behind_edge(tmp_path, limits) as (_server, edge):
        async with https_client(edge, "127.0.0.2") as http:
            room = await create_room(http)
            flooder, neighbour = await create_user(http), await create_user(http)
            path = f"/rooms/{room['id']}/messages"
            async with wss(edge, f"/ws/{room['id']}/{flooder['id']}", "127.0.0.2") as ws:
                for i in range(2):
                    await ws.send(json.dumps({"content": f"s{i}"}))
                await receive_messages(ws, 2)
                ok = await http.post(path, json={"user_id": flooder["id"], "content": "r"})
                assert ok.status_code == 201
                refused = await http.post(path, json={"user_id": flooder["id"], "content": "x"})
                assert refused.status_code == 429 and "retry-after" in refused.headers
                await ws.send(json.dumps({"content": "over"}))
                assert (await receive_type(ws, "error"))["code"] == "RATE_LIMITED"
                neighbours = [
                    await http.post(path, json={"user_id": neighbour["id"], "content": f"n{i}"})
                    for i in range(3)
                ]
                assert [response.status_code for response in neighbours] == [201] * 3


@pytest.mark.service
async def test_the_app_sees_the_edges_scheme(tmp_path: Path) -> None:
    config = tmp_path / "hypercorn.toml"
    settings = (PROJECT_ROOT / "hypercorn.toml").read_text()
    config.write_text(settings + "access_log_format = 'scheme=%(S)s %(h)s \"%(r)s\"'\n")
    with behind_edge(tmp_path, args=["--config", str(config)]) as (server, edge):
        async with https_client(edge, "127.0.0.2") as http:
            room, user = await create_room(http), await create_user(http)
        async with wss(edge, f"/ws/{room['id']}/{user['id']}", "127.0.0.2") as ws:
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong")
        expected = [
            'scheme=https 127.0.0.2 "POST /rooms',
            'scheme=wss 127.0.0.2 "GET /ws/',
            "scheme=http 127.0.0.1:",  # start_server's health checks came straight in
        ]
        deadline = asyncio.get_running_loop().time() + 10
        while not all(text in server.log() for text in expected):
            assert asyncio.get_running_loop().time() < deadline, server.log()
            await asyncio.sleep(0.05)
