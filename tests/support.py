"""Helpers for driving a real server: start/stop it, make rooms and users, read frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.protocol_check import check_close_code, check_frame

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server and wait for it to exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"server did not exit within {timeout}s:\n{self.log()}"
                ) from None
        return self.process.returncode


def start_server(
    workdir: Path,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> RunningServer:
    """Start `quartchat serve` on a free port with a fresh SQLite file in `workdir`."""
    port = port or free_port()
    server_env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite://{workdir / 'chat.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
        # Tests of other features send faster than a person; the rate limit tests set
        # their own limits.
        "RATE_LIMIT_PER_SECOND": "100000",
        "RATE_LIMIT_BURST": "100000",
        "CREATIONS_PER_MINUTE": "6000000",
        "CREATIONS_BURST": "100000",
        "REST_READS_PER_MINUTE": "6000000",
        "REST_READS_BURST": "100000",
        **(env or {}),
    }
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartchat.cli", "serve", *(args or [])],
            cwd=workdir,
            env=server_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, port, log_path, server_env)
    if wait:
        wait_until_healthy(server)
    return server


def wait_until_healthy(server: RunningServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.http_url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server not healthy within {timeout}s:\n{server.log()}")


def run_script(script: str, *args: str, cwd: Path) -> str:
    """Run Python source in a fresh interpreter (Tortoise keeps the first engine it
    opens for the life of a process); assert that it succeeded, return what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def create_user(http: httpx.AsyncClient, username: str = "John Doe") -> dict[str, Any]:
    response = await http.post("/users", json={"username": username, "id": unique_id("user")})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def create_room(http: httpx.AsyncClient, name: str = "General") -> dict[str, Any]:
    response = await http.post("/rooms", json={"name": name, "id": unique_id("room")})
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


class TimedConnection(ClientConnection):
    """A `websockets` client connection that notes when the server's close frame
    arrived and when the TCP connection ended (`connect(create_connection=...)`)."""

    close_received_at: float | None = None
    lost_at: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_frame_arrived = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.close_received_at is None and self.protocol.close_rcvd is not None:
            self.close_received_at = time.monotonic()
            self.close_frame_arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()
        if self.close_received_at is None and self.protocol.close_rcvd is not None:
            self.close_received_at = self.lost_at
        super().connection_lost(exc)

    @property
    def close_seconds(self) -> float:
        """From the server's close frame to the end of the TCP connection."""
        assert self.close_received_at is not None, "no close frame from the server"
        assert self.lost_at is not None, "the connection is still open"
        return self.lost_at - self.close_received_at


def open_socket(
    server: RunningServer, room_id: str, user_id: str, query: str = "", **options: Any
) -> Any:
    """`async with open_socket(...) as ws:` — a websockets client on the chat socket."""
    suffix = f"?{query}" if query else ""
    return connect(f"{server.ws_url}/ws/{room_id}/{user_id}{suffix}", open_timeout=10, **options)


@asynccontextmanager
async def open_sockets(
    targets: Sequence[tuple[RunningServer, str, str]],
) -> AsyncIterator[list[ClientConnection]]:
    """Several chat sockets (server, room id, user id) at once, all closed on exit."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_socket(*target)) for target in targets]


async def send_from_all(connections: Sequence[ClientConnection], per_sender: int) -> None:
    """Every socket sends `per_sender` messages "<its index>:<i>", all at the same time."""

    async def send_all(ws: ClientConnection, index: int) -> None:
        for i in range(per_sender):
            await ws.send(json.dumps({"content": f"{index}:{i}"}))

    await asyncio.gather(*(send_all(ws, index) for index, ws in enumerate(connections)))


async def receive_json(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    frame: dict[str, Any] = json.loads(raw)
    return frame


async def receive_type(ws: ClientConnection, frame_type: str, timeout: float = 5) -> dict[str, Any]:
    """The next frame of `frame_type`, skipping others (presence, typing...)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        frame = await receive_json(ws, max(remaining, 0.01))
        if frame["type"] == frame_type:
            return frame


async def receive_messages(
    ws: ClientConnection, count: int, timeout: float = 10
) -> list[dict[str, Any]]:
    return [await receive_type(ws, "message", timeout) for _ in range(count)]


async def assert_silent(
    ws: ClientConnection, frame_type: str = "message", wait: float = 0.5
) -> None:
    """Assert no frame of `frame_type` arrives within `wait` seconds."""
    try:
        frame = await receive_type(ws, frame_type, wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {frame_type} frame: {frame}")


class RawWebSocket:
    """A bare RFC 6455 client over a plain socket, for what `websockets` hides: a peer
    that stops reading, and control frames (server pings) as they arrive."""

    def __init__(self, port: int, path: str, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the TCP connection")
        return chunk

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame (server frames are unmasked); a text frame
        or a close code that `/asyncapi.json` does not describe fails the test."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._take(2), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8), "big")
        opcode, payload = first & 0x0F, self._take(length)
        if opcode == 0x1:
            check_frame(payload)
        elif opcode == 0x8 and len(payload) >= 2:
            check_close_code(int.from_bytes(payload[:2], "big"))
        return opcode, payload

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool = True,
    ) -> None:
        """Send one frame exactly as given (client frames must be masked; `mask=False`
        and `rsv` bits break the protocol on purpose). Payloads under 126 bytes."""
        assert len(payload) < 126
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        if not mask:
            self.sock.sendall(bytes([first, len(payload)]) + payload)
            return
        key = os.urandom(4)
        masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(bytes([first, 0x80 | len(payload)]) + key + masked)

    def read_until_close(self, timeout: float) -> tuple[int, int | None]:
        """Read frames until a close frame: (text frames before it, close code), or
        (text frames, None) if the server reset or closed the connection without one."""
        self.sock.settimeout(timeout)
        texts = 0
        while True:
            try:
                opcode, payload = self.read_frame()
            except ConnectionError:
                return texts, None
            if opcode == 0x8:
                return texts, int.from_bytes(payload[:2], "big")
            texts += opcode == 0x1

    def send_close(self, code: int = 1000) -> None:
        """Send a close frame with `code`."""
        self._send_frame(0x8, code.to_bytes(2, "big"))

    def send_text(self, text: str) -> None:
        """Send one text frame, however long."""
        self._send_frame(0x1, text.encode())

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        # Masked, as a client's frames must be; a zero mask keeps the payload as it is.
        size = len(payload)
        if size < 126:
            head = bytes([0x80 | opcode, 0x80 | size])
        elif size < 1 << 16:
            head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
        self.sock.sendall(head + bytes(4) + payload)

    def established_on_server(self) -> bool:
        """Whether the kernel still has this connection ESTABLISHED (IPv4 loopback)."""
        local = f"{self.sock.getsockname()[1]:04X}"
        with open("/proc/net/tcp") as table:
            for line in table.read().splitlines()[1:]:
                fields = line.split()
                # the server's end of this connection: its remote port is our local port
                if fields[2].endswith(f":{local}") and fields[3] == "01":
                    return True
        return False

    def close(self) -> None:
        self.sock.close()


POSTGRES_ADMIN_URL = os.environ.get(
    "QUARTCHAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("QUARTCHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def create_postgres_database() -> str:
    """A fresh, empty PostgreSQL database for one test; returns its URL."""
    import asyncpg

    name = f"quartchat_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class RedisServer:
    """A private redis-server on a free port, so a test may stop and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, on a free port, so a test may stop and
    start it without disturbing the machine's shared server."""

    def __init__(self) -> None:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.pg_ctl = str(bindir / "pg_ctl")
        self.port = free_port()
        # Outside pytest's tmp_path: that is private to root, and initdb refuses root.
        self.workdir = Path(tempfile.mkdtemp(prefix="quartchat-pg-"))
        self.data = self.workdir / "data"
        self.socket_dir = self.workdir / "socket"
        self.data.mkdir()
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            for path in (self.workdir, self.data, self.socket_dir):
                shutil.chown(path, "postgres", "postgres")
        self._as_postgres(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            prefix + command,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        log = str(self.workdir / "server.log")
        self._as_postgres(
            [self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start"]
        )

    def stop(self) -> None:
        self._as_postgres([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def remove(self) -> None:
        """Stop the cluster if it runs, and delete it."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def metric(metrics_text: str, name: str) -> float:
    """One sample of `GET /metrics` output, by its full name (labels included)."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", metrics_text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))
