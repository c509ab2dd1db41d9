"""Every close the server sends completes promptly, and the socket leaves the room at once.

Each test measures, with a real `websockets` client on a real server, the time from the
server's close frame to the end of the TCP connection, and prints it (`pytest -s`)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart.testing.connections import WebsocketResponseError
from websockets.exceptions import ConnectionClosed

from quartchat import create_app
from quartchat.rooms.chat import EXTENSION_KEY
from tests.support import (
    RawWebSocket,
    RunningServer,
    TimedConnection,
    create_room,
    create_user,
    open_socket,
    receive_type,
    round_trips_during,
    start_server,
)
from tests.support.browser import launch_chromium
from tests.support.timing import within

# A close frame to the end of TCP: a few milliseconds. The servers these tests start wait
# CLOSE_TIMEOUT=30 s for a close reply (unless a test sets its own), so a close that
# lingers until then (or until the client's own 10 s) is far above this ceiling.
PROMPT = 5.0
RATE_LIMITS = {"RATE_LIMIT_PER_SECOND": "2", "RATE_LIMIT_BURST": "3", "RATE_LIMIT_STRIKES": "10"}


@pytest.fixture(name="start")
def _start(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start a server of the test's own (exact socket counts), stopped after the test."""
    started: list[RunningServer] = []

    def start(**env: str) -> RunningServer:
        server = start_server(tmp_path, env={"CLOSE_TIMEOUT": "30", **env})
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(name="http_of")
async def _http_of() -> AsyncIterator[Callable[[RunningServer], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def http_of(server: RunningServer) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=server.http_url, timeout=10)
        clients.append(client)
        return client

    yield http_of
    for client in clients:
        await client.aclose()


def timed_socket(server: RunningServer, room_id: str, user_id: str, **options: Any) -> Any:
    return open_socket(server, room_id, user_id, create_connection=TimedConnection, **options)


async def closed(ws: TimedConnection, code: int, started: float, label: str) -> float:
    """Read until the connection ends; check the close code and that it ended promptly
    after the server's close frame. Returns (and prints) that time."""
    with pytest.raises(ConnectionClosed) as ended:
        async with asyncio.timeout(30):
            while True:
                await ws.recv()
    assert ended.value.rcvd is not None, "closed without a close frame"
    assert ended.value.rcvd.code == code
    print(f"\nclose {code} ({label}): from the cause {(time.monotonic() - started) * 1000:.0f} ms")
    return within(ws.close_seconds, PROMPT, f"close {code} ({label}): close frame -> TCP closed")


async def open_sockets_gauge(http: httpx.AsyncClient) -> int:
    text = (await http.get("/metrics")).text
    match = re.search(r"^quartchat_open_sockets (\S+)$", text, re.MULTILINE)
    assert match, text
    return int(float(match.group(1)))


async def present(http: httpx.AsyncClient, room_id: str) -> list[str]:
    response = await http.get(f"/rooms/{room_id}/presence")
    assert response.status_code == 200, response.text
    return sorted(member["user_id"] for member in response.json())


async def test_oversized_frame_1009_completes_promptly_and_leaves_the_room(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start()
    http = http_of(server)
    room, alice, bob = await create_room(http), await create_user(http), await create_user(http)
    async with (
        open_socket(server, room["id"], bob["id"]) as bob_ws,
        timed_socket(server, room["id"], alice["id"], max_size=None) as alice_ws,
    ):
        await receive_type(bob_ws, "user_joined")
        assert await present(http, room["id"]) == sorted([alice["id"], bob["id"]])
        assert await open_sockets_gauge(http) == 2
        started = time.monotonic()
        await alice_ws.send(json.dumps({"content": "x" * (2 * 1024 * 1024)}))
        await closed(alice_ws, 1009, started, "2 MiB frame")
        assert await present(http, room["id"]) == [bob["id"]]
        assert await open_sockets_gauge(http) == 1
        left = await receive_type(bob_ws, "user_left")
        assert left["user_id"] == alice["id"]


async def test_rate_limit_strikes_1008_complete_promptly(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start(**RATE_LIMITS)
    http = http_of(server)
    room, flooder = await create_room(http), await create_user(http)
    async with timed_socket(server, room["id"], flooder["id"]) as flood:
        started = time.monotonic()
        for i in range(40):
            await flood.send(json.dumps({"content": f"flood {i}"}))
        await closed(flood, 1008, started, "rate limit strikes")
    assert await present(http, room["id"]) == []
    assert await open_sockets_gauge(http) == 0


@pytest.mark.parametrize("what", ["room", "user"])
async def test_unknown_room_or_user_4404_completes_promptly(
    start: Callable[..., RunningServer],
    http_of: Callable[[RunningServer], httpx.AsyncClient],
    what: str,
) -> None:
    server = start()
    http = http_of(server)
    room, user = await create_room(http), await create_user(http)
    room_id = "no-such-room" if what == "room" else room["id"]
    user_id = "no-such-user" if what == "user" else user["id"]
    started = time.monotonic()
    async with timed_socket(server, room_id, user_id) as ws:
        await closed(ws, 4404, started, f"unknown {what}")
    assert await present(http, room["id"]) == []
    assert await open_sockets_gauge(http) == 0


async def test_bad_token_4401_completes_promptly(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start(AUTH_SECRET="a-secret-for-the-test-only-0123456789")
    http = http_of(server)
    user = await create_user(http)
    http.headers["Authorization"] = f"Bearer {user['token']}"
    room = await create_room(http)
    started = time.monotonic()
    async with timed_socket(server, room["id"], user["id"], query="token=forged") as ws:
        await closed(ws, 4401, started, "bad token")
    assert await present(http, room["id"]) == []
    assert await open_sockets_gauge(http) == 0


async def test_sockets_over_the_cap_4429_complete_promptly(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start(MAX_SOCKETS_PER_USER="1")
    http = http_of(server)
    room, user = await create_room(http), await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as first:
        await first.send('{"type": "ping"}')
        await receive_type(first, "pong")
        started = time.monotonic()
        async with timed_socket(server, room["id"], user["id"]) as second:
            await closed(second, 4429, started, "socket cap")
        assert await present(http, room["id"]) == [user["id"]]
        assert await open_sockets_gauge(http) == 1


async def test_slow_consumer_4008_completes_promptly_once_it_reads(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    # A long close timeout: the slow client takes its time to read its backlog.
    server = start(SEND_QUEUE_SIZE="32", MAX_MESSAGE_CHARS="60000", CLOSE_TIMEOUT="30")
    http = http_of(server)
    room, sender, slow_user = (
        await create_room(http),
        await create_user(http),
        await create_user(http),
    )
    async with timed_socket(server, room["id"], slow_user["id"], max_queue=4) as slow:
        # Posted over REST: the only socket in the room is the one that falls behind.
        await _post_until_a_slow_close(http, room["id"], sender["id"])
        # The server's close frame waits behind the backlog; the socket already left.
        assert await present(http, room["id"]) == []
        assert await open_sockets_gauge(http) == 0
        started = time.monotonic()
        await closed(slow, 4008, started, "slow consumer, after reading its backlog")


async def _post_until_a_slow_close(http: httpx.AsyncClient, room_id: str, user_id: str) -> None:
    """Post big messages until the server closed a socket with 4008."""
    for i in range(2000):
        body = {"user_id": user_id, "content": f"{i:05d}" + "x" * 50_000}
        response = await http.post(f"/rooms/{room_id}/messages", json=body)
        assert response.status_code == 201, response.text
        if i % 20 == 19 and await _slow_closes(http) == 1:
            return
    raise AssertionError("no socket was closed with 4008")


async def _slow_closes(http: httpx.AsyncClient) -> int:
    text = (await http.get("/metrics")).text
    match = re.search(r"^quartchat_slow_consumer_closes_total (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


def fin_wait_1_towards(port: int) -> list[str]:
    """`ss -tn` lines of connections in FIN-WAIT-1 whose peer is `port` on loopback."""
    listing = subprocess.run(
        ["ss", "-tnH", "state", "fin-wait-1", "dst", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in listing.splitlines() if line.strip()]


async def test_stalled_client_is_reset_after_the_close_timeout(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start(SEND_QUEUE_SIZE="32", MAX_MESSAGE_CHARS="60000", CLOSE_TIMEOUT="1")
    http = http_of(server)
    room, sender, stalled_user = (
        await create_room(http),
        await create_user(http),
        await create_user(http),
    )
    stalled = RawWebSocket(
        server.port, f"/ws/{room['id']}/{stalled_user['id']}", receive_buffer=4096
    )
    port = stalled.sock.getsockname()[1]
    await _post_until_a_slow_close(http, room["id"], sender["id"])
    assert await present(http, room["id"]) == []
    # After the close timeout the server resets the connection: nothing of it lingers
    # in the kernel (no FIN-WAIT-1 holding megabytes nobody will read).
    for _ in range(200):
        if not stalled.established_on_server():
            break
        await asyncio.sleep(0.05)
    assert not stalled.established_on_server()
    assert fin_wait_1_towards(port) == []
    stalled.sock.settimeout(10)
    with pytest.raises(ConnectionResetError):
        while stalled.sock.recv(1 << 20):
            pass
    stalled.close()


async def test_client_that_never_answers_its_1009_is_reset(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start(CLOSE_TIMEOUT="1")
    http = http_of(server)
    room, user = await create_room(http), await create_user(http)
    silent = RawWebSocket(server.port, f"/ws/{room['id']}/{user['id']}")
    port = silent.sock.getsockname()[1]
    assert await present(http, room["id"]) == [user["id"]]
    await asyncio.to_thread(silent.send_text, json.dumps({"content": "x" * (2 * 1024 * 1024)}))
    _, code = await asyncio.to_thread(silent.read_until_close, 10)
    assert code == 1009
    assert await present(http, room["id"]) == []
    assert await open_sockets_gauge(http) == 0
    # It never answers the close: after CLOSE_TIMEOUT the server resets the connection.
    silent.sock.settimeout(10)
    with pytest.raises(ConnectionResetError):
        await asyncio.to_thread(silent.sock.recv, 1 << 16)
    assert fin_wait_1_towards(port) == []
    silent.close()


PAGE_SENDS_2_MIB = """
async ([url]) => {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error("socket failed to open"));
  });
  const started = performance.now();
  const closed = new Promise((resolve) => {
    socket.onclose = (event) => resolve({code: event.code, ms: performance.now() - started});
  });
  socket.send(JSON.stringify({content: "x".repeat(2 * 1024 * 1024)}));
  return await closed;
}
"""


@pytest.mark.browser
async def test_oversized_frame_1009_in_chromium(
    start: Callable[..., RunningServer], http_of: Callable[[RunningServer], httpx.AsyncClient]
) -> None:
    server = start()
    http = http_of(server)
    room, user = await create_room(http), await create_user(http)
    async with launch_chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{server.http_url}/health")
        url = f"{server.ws_url}/ws/{room['id']}/{user['id']}"
        result = await page.evaluate(PAGE_SENDS_2_MIB, [url])
    assert result["code"] == 1009
    within(result["ms"] / 1000, PROMPT, "close 1009 (Chromium, 2 MiB string): send -> close event")
    assert await present(http, room["id"]) == []
    assert await open_sockets_gauge(http) == 0


async def test_handshakes_are_refused_once_the_server_is_going_away(tmp_path: Path) -> None:
    # Between SIGTERM and the listener's close (a few loop turns) a handshake can still
    # arrive; `quartchat serve` stops intake first, which only an app in hand can show.
    app = create_app(overrides={"database_url": f"sqlite://{tmp_path / 'app.sqlite3'}"})
    async with app.test_app() as test_app:
        app.extensions[EXTENSION_KEY].stop_intake()
        with pytest.raises(WebsocketResponseError) as refused:
            async with test_app.test_client().websocket("/ws/room/user") as ws:
                await ws.receive()
    response = refused.value.response
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.get_json())["code"] == "UNAVAILABLE"


@pytest.mark.parametrize("refusal", ["unknown room", "impossible id"])
async def test_a_refused_socket_reads_what_the_client_sent_before_its_close(
    server: RunningServer, http: httpx.AsyncClient, refusal: str
) -> None:
    # quartchat.js pings the moment a socket opens. A server that closed the connection
    # with that ping unread would reset it (RST), and a client that had not read the
    # close frame yet would lose it: a browser then sees 1006 and retries.
    user = await create_user(http)
    room_id = "no-such-room" if refusal == "unknown room" else "bad%20id"
    client = await asyncio.to_thread(RawWebSocket, server.port, f"/ws/{room_id}/{user['id']}")
    client.send_text('{"type": "ping"}')
    await asyncio.sleep(0.5)  # the server has long refused it; nothing read yet
    _, code = await asyncio.to_thread(client.read_until_close, 10)
    assert code == 4404
    # The server waited for this reply, and then ends the connection cleanly (FIN, not
    # a reset that would have dropped whatever the client had not read yet).
    client.send_close(4404)
    client.sock.settimeout(10)
    assert await asyncio.to_thread(client.sock.recv, 1024) == b""
    client.close()


OFFER_DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
# A deflate bomb inflating to 1 GiB, about 1 MiB on the wire. Unbounded, the server
# inflates it at well under 1 GiB/s of one core (over a second of CPU, the neighbour's
# round trips held as long); read and dropped, it costs next to nothing.
BOMB = 1 << 30
BOMB_CPU = 1.0
NEIGHBOUR_ROUND_TRIP = 1.0


@pytest.mark.parametrize("refusal", [4401, 4404, 4429])
async def test_a_refused_socket_never_negotiates_compression(
    start: Callable[..., RunningServer],
    http_of: Callable[[RunningServer], httpx.AsyncClient],
    refusal: int,
) -> None:
    # Compression on for accepted sockets: a refused one must not get it all the same.
    server = start(
        AUTH_SECRET="a-secret-for-the-test-only-0123456789",
        MAX_SOCKETS_PER_USER="1",
        WS_COMPRESSION="true",
    )
    http = http_of(server)
    user = await create_user(http)
    http.headers["Authorization"] = f"Bearer {user['token']}"
    room = await create_room(http)
    path = {
        4401: f"/ws/{room['id']}/{user['id']}",  # no token
        4404: f"/ws/no-such-room/{user['id']}?token={user['token']}",
        4429: f"/ws/{room['id']}/{user['id']}?token={user['token']}",  # the user's second
    }[refusal]
    async with open_socket(server, room["id"], user["id"], f"token={user['token']}") as ws:
        client = await asyncio.to_thread(RawWebSocket, server.port, path, headers=OFFER_DEFLATE)
        try:
            assert b"permessage-deflate" not in client.response.lower()
            _, code = await asyncio.to_thread(client.read_until_close, 10)
            assert code == refusal
            # While the server waits for its close reply, the client streams a bomb.
            cpu = server.cpu_seconds()
            rtts = await round_trips_during(ws, asyncio.to_thread(client.send_deflate_bomb, BOMB))
            cpu = server.cpu_seconds() - cpu
        finally:
            client.close()
        within(cpu, BOMB_CPU, f"refused {refusal}, deflate bomb: server CPU")
        within(
            max(rtts),
            NEIGHBOUR_ROUND_TRIP,
            f"refused {refusal}, deflate bomb: neighbour's slowest of {len(rtts)} round trips",
        )
