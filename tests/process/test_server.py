"""`quartchat serve` and plain Hypercorn as processes: binding, shutdown, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from quartchat.config.settings import Settings
from quartchat.process.server import ipv6_available
from tests.support import (
    PROJECT_ROOT,
    RawWebSocket,
    RunningServer,
    TimedConnection,
    create_room,
    create_user,
    open_socket,
    receive_messages,
    receive_type,
    start_server,
    stored_messages,
    wait_until_healthy,
)
from tests.support.timing import within


async def wait_for_close(ws: Any) -> tuple[int, float]:
    """Block until the server closes `ws`: (close code, monotonic time of the close)."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, time.monotonic()


# Hypercorn's graceful_timeout and quartchat's CLOSE_TIMEOUT raised far above this
# ceiling for the SIGTERM tests: a shutdown that waits for either instead of closing at
# once fails them, however loaded the machine.
SIGTERM_CEILING = 5.0


def start_patient_server(tmp_path: Path) -> RunningServer:
    config = tmp_path / "patient-hypercorn.toml"
    settings = (PROJECT_ROOT / "hypercorn.toml").read_text()
    assert "graceful_timeout = 3\n" in settings
    config.write_text(settings.replace("graceful_timeout = 3\n", "graceful_timeout = 30\n"))
    return start_server(tmp_path, env={"CLOSE_TIMEOUT": "30"}, args=["--config", str(config)])


@pytest.mark.server
async def test_sigterm_closes_every_socket_1012_and_keeps_messages(tmp_path: Path) -> None:
    server = start_patient_server(tmp_path)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        rooms = [await create_room(http) for _ in range(2)]
        user = await create_user(http)
        sockets = [open_socket(server, room["id"], user["id"]) for room in rooms for _ in range(2)]
        connections = [await socket.__aenter__() for socket in sockets]
        await connections[0].send('{"content": "kept over the restart"}')
        await receive_messages(connections[0], 1)
        flood = 200
        for i in range(flood):
            await connections[2].send(json.dumps({"content": f"burst {i}"}))
        closes = [asyncio.create_task(wait_for_close(ws)) for ws in connections]
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*closes)
        assert [code for code, _ in results] == [1012] * len(connections)
        slowest = max(closed_at for _, closed_at in results) - signalled
        within(slowest, SIGTERM_CEILING, "SIGTERM -> the last 1012 close frame")
        assert server.process.wait(10) == 0
        for socket in sockets:
            await socket.__aexit__(None, None, None)

    restarted = start_server(tmp_path, port=server.port)
    try:
        async with httpx.AsyncClient(base_url=restarted.http_url) as http:
            first = (await http.get(f"/rooms/{rooms[0]['id']}/messages")).json()
            assert [m["content"] for m in first] == ["kept over the restart"]
            burst = (
                await http.get(f"/rooms/{rooms[1]['id']}/messages", params={"limit": 500})
            ).json()
            assert [m["seq"] for m in burst] == list(range(1, len(burst) + 1))
            assert [m["content"] for m in burst] == [f"burst {i}" for i in range(len(burst))]
    finally:
        restarted.stop()


@pytest.mark.server
async def test_sigterm_stops_intake_before_any_1012_and_exits_promptly(tmp_path: Path) -> None:
    """Clients that reconnect the instant they see 1012 never land on the dying process,
    which exits promptly having stored every message it acknowledged."""
    server = start_patient_server(tmp_path)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        room = await create_room(http)
        users = [await create_user(http) for _ in range(4)]
    acknowledged: list[str] = []
    accepted_while_dying: list[str] = []
    refusals: list[str] = []
    close_seconds: list[float] = []
    chatting = asyncio.Barrier(len(users) + 1)

    async def keep_sending(ws: TimedConnection, index: int) -> None:
        for i in range(300):
            await ws.send(json.dumps({"content": f"{index}:{i}"}))
            await asyncio.sleep(0.005)

    async def reconnect_until_exit(user_id: str) -> None:
        while server.process.poll() is None:
            try:
                async with open_socket(server, room["id"], user_id):
                    accepted_while_dying.append(user_id)
            except (OSError, InvalidHandshake, TimeoutError) as refused:
                refusals.append(type(refused).__name__)
            await asyncio.sleep(0.01)

    async def read_acknowledgements(
        ws: TimedConnection, user_id: str, first: asyncio.Event
    ) -> int | None:
        try:
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "message" and frame["user_id"] == user_id:
                    acknowledged.append(frame["content"])
                    first.set()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    async def chat_then_reconnect(user_id: str, index: int) -> int | None:
        async with open_socket(
            server, room["id"], user_id, create_connection=TimedConnection
        ) as ws:
            first_acknowledged = asyncio.Event()
            reading = asyncio.create_task(read_acknowledgements(ws, user_id, first_acknowledged))
            sending = asyncio.create_task(keep_sending(ws, index))
            await first_acknowledged.wait()
            await chatting.wait()
            await ws.close_frame_arrived.wait()
            reconnecting = asyncio.create_task(reconnect_until_exit(user_id))
            code = await reading
            sending.cancel()
            await reconnecting
            close_seconds.append(ws.close_seconds)
            return code

    def answer_late(sluggish: RawWebSocket) -> int | None:
        """A client slow to answer its close: it keeps the dying process waiting."""
        _, code = sluggish.read_until_close(timeout=10)
        time.sleep(0.5)
        sluggish.send_close()
        sluggish.close()
        return code

    sluggish = RawWebSocket(server.port, f"/ws/{room['id']}/{users[0]['id']}")
    chats = [asyncio.create_task(chat_then_reconnect(u["id"], i)) for i, u in enumerate(users)]
    await chatting.wait()
    late_answer = asyncio.create_task(asyncio.to_thread(answer_late, sluggish))
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    exit_code = await asyncio.to_thread(server.process.wait, 15)
    exited_after = time.monotonic() - signalled
    codes = await asyncio.gather(*chats, late_answer)
    print(
        f"\nclose 1012 (SIGTERM): close frame -> TCP closed "
        f"{', '.join(f'{seconds * 1000:.1f}' for seconds in close_seconds)} ms; "
        f"{len(refusals)} reconnects refused ({', '.join(sorted(set(refusals)))})"
    )
    assert exit_code == 0
    assert codes == [1012] * (len(users) + 1)
    assert accepted_while_dying == []
    assert refusals, "nobody tried to reconnect"
    within(exited_after, SIGTERM_CEILING, "SIGTERM -> exit")
    within(max(close_seconds), SIGTERM_CEILING, "close 1012: close frame -> TCP closed (slowest)")

    restarted = start_server(tmp_path, port=server.port)
    try:
        async with httpx.AsyncClient(base_url=restarted.http_url) as http:
            stored = {m["content"] for m in await stored_messages(http, room["id"])}
        assert acknowledged and set(acknowledged) <= stored
    finally:
        restarted.stop()


@pytest.mark.server
async def test_plain_hypercorn_command_serves_the_app(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite://{tmp_path / 'chat.sqlite3'}"}
    log_path = tmp_path / "hypercorn.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hypercorn",
                "--config",
                "hypercorn.toml",
                "--bind",
                "127.0.0.1:0",  # Hypercorn logs the port it got (wait_until_healthy reads it)
                "quartchat:create_app()",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, 0, log_path)
    try:
        wait_until_healthy(server)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            room = await create_room(http)
            user = await create_user(http)
            async with open_socket(server, room["id"], user["id"]) as ws:
                await ws.send('{"content": "via hypercorn"}')
                [message] = await receive_messages(ws, 1)
                assert message["content"] == "via hypercorn"
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.server
@pytest.mark.skipif(not ipv6_available(), reason="this machine has no IPv6")
async def test_default_host_is_dual_stack(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"HOST": ""})
    try:
        for host in ("127.0.0.1", "[::1]"):
            async with httpx.AsyncClient(base_url=f"http://{host}:{server.port}") as http:
                assert (await http.get("/health")).json()["status"] == "ok"
    finally:
        server.stop()


def serve_until_refused(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`quartchat serve ARGS` run to its end: for settings it must refuse at startup."""
    return subprocess.run(
        [sys.executable, "-m", "quartchat.process.cli", "serve", *args],
        cwd=tmp_path,
        env={**os.environ, "PORT": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.server
def test_more_than_one_worker_without_broker_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "two-workers.toml"
    config.write_text(
        (PROJECT_ROOT / "hypercorn.toml").read_text().replace("workers = 1", "workers = 2")
    )
    result = serve_until_refused(tmp_path, "--config", str(config))
    assert result.returncode != 0
    assert "REDIS_URL" in result.stdout


@pytest.mark.server
@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("PORT", "eighty", "PORT must be an integer"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("AUTH_SECRET", "k9x", "AUTH_SECRET is too weak"),
    ],
)
def test_bad_environment_is_a_clear_error(
    tmp_path: Path, name: str, value: str, error: str
) -> None:
    result = serve_until_refused(tmp_path, env={name: value})
    assert result.returncode == 2
    assert error in result.stdout


@pytest.mark.server
def test_a_weak_secret_stops_serve_with_one_line_saying_what_to_do(tmp_path: Path) -> None:
    result = serve_until_refused(tmp_path, env={"AUTH_SECRET": "k9x"})
    assert result.returncode == 2
    assert result.stderr == ""  # every line goes to stdout
    [line] = [line for line in result.stdout.splitlines() if "AUTH_SECRET" in line]
    assert "at least 32 random characters" in line
    assert "quartchat secret" in line


def test_quartchat_secret_prints_a_secret_that_serve_accepts(tmp_path: Path) -> None:
    made = [
        subprocess.run(
            [sys.executable, "-m", "quartchat.process.cli", "secret"],
            env={**os.environ, "AUTH_SECRET": "k9x"},  # the weak one it is there to replace
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    first, second = (output.strip() for output in made)
    assert made[0] == first + "\n"
    assert first != second
    assert len(first) == 64 and re.fullmatch(r"[A-Za-z0-9_-]+", first)
    assert Settings.from_env({"AUTH_SECRET": first}).auth_secret == first


@pytest.mark.server
async def test_ping_round_trip_after_restart_on_same_database(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        room = await create_room(http)
        user = await create_user(http)
    server.stop()
    again = start_server(tmp_path)
    try:
        async with open_socket(again, room["id"], user["id"]) as ws:
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong")
    finally:
        again.stop()


@pytest.mark.server
def test_missing_hypercorn_settings_are_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = serve_until_refused(tmp_path, "--config", str(missing))
    assert result.returncode != 0
    assert f"the Hypercorn settings file {missing} does not exist" in result.stdout
