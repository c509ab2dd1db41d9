"""The startup probe: a server whose fast path is broken refuses to start, in one line,
before it accepts anyone; a healthy one says so in its log and in /health."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypercorn.utils import wrap_app
from quart import Quart
from quart.asgi import ASGIWebsocketConnection

from quartchat import create_app
from quartchat.internals.shortcuts import (
    FRAME_GUARD,
    INLINE_SOCKET,
    SOCKET_WRITES,
    SQLITE_BATCH,
    ShortcutMissingError,
)
from quartchat.process import probe
from quartchat.process.lifecycle import lifecycle_of
from quartchat.process.probe import FastPathBroken, SocketProbe, prove_sqlite_batch
from quartchat.process.server import FAST_PATH_BROKEN, load_config
from quartchat.rooms.chat import EXTENSION_KEY, Chat
from tests.support import PROJECT_ROOT, reserved_port, served, unique_id

SHIMS = PROJECT_ROOT / "tests" / "support" / "shims"
VERSIONS = re.compile(
    r"quart 0\.\d+\.\d+, hypercorn 0\.\d+\.\d+, wsproto \d+\.\d+\.\d+, "
    r"aiosqlite 0\.\d+\.\d+, Python 3\.\d+\.\d+"
)
# Generous on a loaded 2-core machine: the probe gives up after 5 s.
REFUSES_WITHIN = 30.0


@dataclass
class Refusal:
    returncode: int
    log: str
    accepted: int  # connections to the server's port that were accepted
    refused: int


def serve_broken(
    workdir: Path, broken: str, env: dict[str, str] | None = None, args: list[str] | None = None
) -> Refusal:
    """`quartchat serve` with one fast path broken on purpose (tests/support/shims),
    its port tried all along: a connection accepted before the probe passed is a bug.
    The port is reserved (no other process may listen on it) while the server runs."""
    with reserved_port() as port:
        return _serve_broken_on(port, workdir, broken, env, args)


def _serve_broken_on(
    port: int,
    workdir: Path,
    broken: str,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> Refusal:
    log_path = workdir / "server.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SHIMS), str(PROJECT_ROOT)]),
        "QUARTCHAT_TEST_BREAK": broken,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite://{workdir / 'chat.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    accepted = refused = 0
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartchat.process.cli", "serve", *(args or [])],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + REFUSES_WITHIN
        try:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        accepted += 1
                except OSError:
                    refused += 1
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    return Refusal(process.returncode, log_path.read_text(errors="replace"), accepted, refused)


@pytest.mark.server
@pytest.mark.parametrize(
    ("broken", "shortcut", "why"),
    [
        # A renamed internal: the method the frame guard forks is gone upstream.
        ("renamed_internal", FRAME_GUARD, "missing hypercorn.protocol.ws_stream.WSStream"),
        # What Quart 0.23 did: a 101, then no frame ever reached the route.
        ("receive_never_delivers", INLINE_SOCKET, 'the app\'s {"type": "ping"} through'),
        ("aiosqlite_without_execute", SQLITE_BATCH, "lacks aiosqlite.core.Connection._execute"),
        # Every name still there, the behaviour gone: only the probe sees these.
        ("writer_out_of_reach", SOCKET_WRITES, "did not take the write at once"),
        ("guard_bypassed", FRAME_GUARD, "dropped without a close frame"),
    ],
)
def test_a_broken_fast_path_refuses_to_start_in_one_line(
    tmp_path: Path, broken: str, shortcut: str, why: str
) -> None:
    refusal = serve_broken(tmp_path, broken)
    assert refusal.returncode == FAST_PATH_BROKEN, refusal.log
    [line] = [line for line in refusal.log.splitlines() if "fast path broken" in line]
    assert f"not serving: {shortcut} (" in line and why in line, line
    assert VERSIONS.search(line), line
    assert "Traceback" not in refusal.log
    assert "Running on" not in refusal.log
    assert refusal.accepted == 0 and refusal.refused > 0, refusal


@pytest.mark.server
async def test_a_healthy_server_proves_its_fast_paths_before_listening(tmp_path: Path) -> None:
    async with served(tmp_path) as (server, http):
        health = (await http.get("/health")).json()
        assert health["fast_paths"] == "ok" and health["status"] == "ok"
        # Nothing of the probe is left for users to see.
        assert (await http.get("/rooms")).json() == []
        assert (await http.get("/users")).json() == []
        assert "quartchat_open_sockets 0.0" in (await http.get("/metrics")).text
    log = server.log()
    proven = log.index("fast paths ok: socket path and SQLite batch proven in")
    assert proven < log.index("Running on")


@pytest.fixture(name="app")
async def _app(tmp_path: Path) -> AsyncIterator[Quart]:
    app = create_app(overrides={"database_url": f"sqlite://{tmp_path / 'probe.sqlite3'}"})
    async with app.test_app():
        yield app


async def prove_in_process(app: Quart) -> None:
    chat: Chat = app.extensions[EXTENSION_KEY]
    settings = chat.settings
    config = load_config(None, settings)
    await SocketProbe(chat, wrap_app(app, config.wsgi_max_body_size, "asgi"), config).run()


async def test_the_socket_probe_passes_and_leaves_nothing_behind(app: Quart) -> None:
    chat: Chat = app.extensions[EXTENSION_KEY]
    await prove_in_process(app)
    assert chat.hub.subscriber_count == 0 and chat.hub.room_count == 0
    assert chat.directory.queries == 0  # its room and user were only ever cached
    assert chat.fast_paths is None  # no probe ran at this app's startup


async def test_a_receive_that_never_delivers_is_named(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = ASGIWebsocketConnection._create_websocket_from_scope

    def detached(self: ASGIWebsocketConnection, send: object) -> object:
        websocket = create(self, send)  # type: ignore[arg-type]
        websocket._receive = asyncio.Queue().get
        return websocket

    monkeypatch.setattr(ASGIWebsocketConnection, "_create_websocket_from_scope", detached)
    monkeypatch.setattr(probe, "PROBE_TIMEOUT", 0.5)
    with pytest.raises(FastPathBroken) as raised:
        await prove_in_process(app)
    assert raised.value.shortcut == INLINE_SOCKET
    assert "no answer within 0.5 s" in raised.value.problem


async def test_compression_accepted_against_the_settings_is_named(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("quartchat.api.blueprints.ws.refuse_compression", lambda: False)
    with pytest.raises(FastPathBroken, match="permessage-deflate was accepted"):
        await prove_in_process(app)


async def test_the_sqlite_batch_is_proven_through_the_write_path(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    await prove_sqlite_batch()

    def missing(_drafts: object) -> None:
        raise ShortcutMissingError("the installed aiosqlite lacks _execute")

    monkeypatch.setattr(probe, "commit", missing)
    with pytest.raises(FastPathBroken, match="lacks _execute") as raised:
        await prove_sqlite_batch()
    assert raised.value.shortcut == SQLITE_BATCH


async def test_a_sqlite_batch_that_never_commits_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hangs(_drafts: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(probe, "commit", hangs)
    monkeypatch.setattr(probe, "PROBE_TIMEOUT", 0.1)
    with pytest.raises(FastPathBroken, match=r"did not commit within 0\.1 s"):
        await prove_sqlite_batch()


def test_the_refusal_line_names_the_shortcut_its_module_and_the_versions() -> None:
    line = FastPathBroken(FRAME_GUARD, "a protocol ping: no answer").line()
    assert line.startswith(f"fast path broken, not serving: {FRAME_GUARD} (internals/frameguard")
    assert "a protocol ping: no answer" in line and VERSIONS.search(line)
    assert "\n" not in line


async def test_health_reports_the_probe_only_where_one_ran(tmp_path: Path) -> None:
    app = create_app(overrides={"database_url": f"sqlite://{tmp_path / 'health.sqlite3'}"})
    async with app.test_app():
        body = await (await app.test_client().get("/health")).get_json()
        assert "fast_paths" not in body
        app.extensions[EXTENSION_KEY].fast_paths = "ok"
        body = await (await app.test_client().get("/health")).get_json()
        assert body["fast_paths"] == "ok"


@pytest.mark.service
def test_workers_are_not_restarted_after_a_broken_fast_path(tmp_path: Path) -> None:
    """With `workers > 1`, a worker that refused to start stops the server: another
    would fail the same way."""
    config = tmp_path / "hypercorn.toml"
    config.write_text(
        (PROJECT_ROOT / "hypercorn.toml").read_text().replace("workers = 1", "workers = 2")
    )
    refusal = serve_broken(
        tmp_path,
        "renamed_internal",
        env={"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_PREFIX": unique_id("probe")},
        args=["--config", str(config)],
    )
    assert refusal.returncode == FAST_PATH_BROKEN, refusal.log
    assert "starting another" not in refusal.log
    assert refusal.accepted == 0


async def test_a_stop_during_the_probe_is_a_stop_not_a_broken_install(app: Quart) -> None:
    # A SIGTERM during startup (a worker restarted just before a redeploy) refuses the
    # probe's socket with 503, as every new socket; the server must stop, not report
    # its install broken (exit 3 and a CRITICAL line naming the lock).
    chat: Chat = app.extensions[EXTENSION_KEY]
    config = load_config(None, chat.settings)
    with pytest.raises(FastPathBroken, match="HTTP 503"):
        chat.stop_intake()
        await prove_in_process(app)
    lifecycle = lifecycle_of(app)
    lifecycle.prove_fast_paths(wrap_app(app, config.wsgi_max_body_size, "asgi"), config)
    await lifecycle._prove_fast_paths()  # the startup step itself: no refusal
    assert chat.fast_paths is None


async def test_the_probe_passes_while_the_pinger_pings_every_socket(tmp_path: Path) -> None:
    app = create_app(
        overrides={
            "database_url": f"sqlite://{tmp_path / 'pings.sqlite3'}",
            "ping_interval": 0.001,
        }
    )
    async with app.test_app():
        for _ in range(3):
            await prove_in_process(app)


async def test_an_unexpected_failure_is_still_one_named_refusal(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(_first_byte: int, _payload: bytes) -> bytes:
        raise ValueError("no frame today")

    monkeypatch.setattr(probe, "masked_frame", fails)
    with pytest.raises(FastPathBroken, match="failed: ValueError") as raised:
        await prove_in_process(app)
    assert raised.value.shortcut == FRAME_GUARD
