"""Starting when the world is not ready: Redis down, a database that does not answer,
and operators' mistakes, each met by a real `quartchat serve`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import (
    POSTGRES_ADMIN_URL,
    RedisServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    start_server,
)
from tests.support.timing import within

SECRET = "s3cret-pw"


def run_command(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`quartchat ARGS` run to its end in `tmp_path` (stdout and stderr apart)."""
    return subprocess.run(
        [sys.executable, "-m", "quartchat", *args],
        cwd=tmp_path,
        env={
            **os.environ,
            "PORT": "0",
            "HOST": "127.0.0.1",
            "DATABASE_URL": f"sqlite://{tmp_path / 'chat.sqlite3'}",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def silent_database() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a database that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " ERROR " in line]


@pytest.mark.server
def test_a_silent_database_is_asked_again_then_named(tmp_path: Path) -> None:
    with silent_database() as port:
        began = time.monotonic()
        result = run_command(
            tmp_path,
            "serve",
            env={
                "DATABASE_URL": f"postgres://postgres:{SECRET}@127.0.0.1:{port}/chat",
                "DB_STARTUP_TIMEOUT": "7",
            },
        )
        took = time.monotonic() - began
    output = result.stdout
    assert result.returncode == 1, output + result.stderr
    assert took < 25  # 7 s of attempts, not asyncpg's own 60 s
    attempts = re.findall(r"database at 127\.0\.0\.1:\d+ did not answer \(attempt (\d)", output)
    assert attempts and attempts == [str(n) for n in range(1, len(attempts) + 1)]
    [final] = error_lines(output)
    assert re.search(
        rf"the database at 127\.0\.0\.1:{port} did not answer within 7 s \(no answer within "
        r"[\d.]+ s\); check that it is up and that DATABASE_URL names it, or wait longer with "
        r"DB_STARTUP_TIMEOUT$",
        final,
    )
    assert output.rstrip().endswith(final)  # the last line of the run
    assert SECRET not in output + result.stderr
    assert "Traceback" not in output + result.stderr
    assert result.stderr == ""


@pytest.mark.server
def test_a_refused_connection_is_retried_one_line_per_attempt(tmp_path: Path) -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        result = run_command(
            tmp_path,
            "serve",
            env={
                "DATABASE_URL": f"postgres://postgres:{SECRET}@127.0.0.1:{port}/chat",
                "DB_STARTUP_TIMEOUT": "2.5",
            },
        )
    output = result.stdout
    assert result.returncode == 1, output
    retries = [line for line in output.splitlines() if "did not answer (attempt" in line]
    assert len(retries) >= 2  # 0.5 s, then 1 s between attempts
    assert all("ConnectionRefusedError" in line and " WARNING " in line for line in retries)
    assert SECRET not in output


@pytest.mark.server
def test_sigterm_ends_the_wait_for_the_database_at_once(tmp_path: Path) -> None:
    with silent_database() as port:
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "quartchat", "serve"],
                cwd=tmp_path,
                env={
                    **os.environ,
                    "PORT": "0",
                    "HOST": "127.0.0.1",
                    "DATABASE_URL": f"postgres://postgres:{SECRET}@127.0.0.1:{port}/chat",
                    "DB_STARTUP_TIMEOUT": "120",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while "startup: database" not in log_path.read_text():
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            time.sleep(0.5)  # inside the first attempt, which waits up to 5 s
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(15)
            took = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log_path.read_text()
    # Waiting out the attempt instead would take the 4.5 s it had left.
    within(took, 3.0, "SIGTERM while waiting for the database -> exit")
    assert returncode == 0, output
    assert (
        output.rstrip()
        .splitlines()[-1]
        .endswith(f"stopped while waiting for the database at 127.0.0.1:{port}")
    )
    assert "Traceback" not in output


@pytest.mark.server
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DATABASE_URL": "nonsense"},
            "DATABASE_URL has no scheme; set it to sqlite://PATH (e.g. sqlite://quartchat.sqlite3) "
            "or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        (
            {"DATABASE_URL": f"mysql://root:{SECRET}@db/chat"},
            "DATABASE_URL: unknown scheme 'mysql'; set it to sqlite://PATH",
        ),
        (
            {"DATABASE_URL": f"postgres://u:{SECRET}@db:port/chat"},
            "DATABASE_URL: the port is not a number; set it to",
        ),
        (
            {"REDIS_URL": "localhost:6379"},
            "REDIS_URL has no scheme; set it to redis://[:PASSWORD@]HOST[:PORT][/DB]",
        ),
        ({"REDIS_URL": "http://cache"}, "REDIS_URL has scheme 'http'; set it to redis://"),
        ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT must be text or json, got 'yaml'"),
        ({"DB_STARTUP_TIMEOUT": "soon"}, "DB_STARTUP_TIMEOUT must be a number, got 'soon'"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run_command(tmp_path, "serve", env=env)
    assert result.returncode == 2
    [line] = result.stdout.splitlines()
    assert " ERROR quartchat [-] " in line and expected in line
    assert SECRET not in result.stdout
    assert result.stderr == ""


@pytest.mark.server
def test_a_bad_variable_in_json(tmp_path: Path) -> None:
    result = run_command(tmp_path, "serve", env={"LOG_FORMAT": "json", "REDIS_URL": "http://x"})
    assert result.returncode == 2
    [line] = result.stdout.splitlines()
    assert '"level": "ERROR"' in line and "REDIS_URL has scheme 'http'" in line


@pytest.mark.server
def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_command(tmp_path, "serve", env={"PORT": str(port)})
    assert result.returncode == 2
    [line] = result.stdout.splitlines()
    assert line.endswith(
        f"port {port} is in use on 127.0.0.1 (PORT or --port): stop whatever listens there, "
        "or choose another port (--port 0 picks a free one)"
    )


@pytest.mark.server
@pytest.mark.parametrize("where", ["missing directory", "a file for a directory", "read-only"])
def test_an_unusable_sqlite_path_is_named(tmp_path: Path, where: str) -> None:
    fix = "point DATABASE_URL at a writable file (e.g. on a mounted volume)"
    if where == "missing directory":
        path = tmp_path / "no" / "such" / "chat.sqlite3"
        expected = f"DATABASE_URL: {path.parent} does not exist; {fix}"
    elif where == "a file for a directory":
        (tmp_path / "plain-file").write_text("")
        path = tmp_path / "plain-file" / "chat.sqlite3"
        expected = f"DATABASE_URL: {path.parent} is not a directory; {fix}"
    else:
        # sysfs refuses new files even to root, as a read-only volume would.
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs here")
        path = Path("/sys/chat.sqlite3")
        expected = f"DATABASE_URL: cannot write the SQLite database {path} ("
    result = run_command(tmp_path, "serve", env={"DATABASE_URL": f"sqlite://{path}"})
    output = result.stdout
    assert result.returncode == 2, output
    [line] = error_lines(output)
    assert expected in line and line.endswith(fix)
    assert "Traceback" not in output + result.stderr


@pytest.mark.server
def test_a_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("workers = = 2\n")
    result = run_command(tmp_path, "serve", "--config", str(config))
    assert result.returncode == 2
    [line] = result.stdout.splitlines()
    assert f"the Hypercorn settings file {config} is not valid TOML (" in line
    assert line.endswith("fix it, or pass another with --config")


def test_a_failed_migration_exits_non_zero_with_its_error(tmp_path: Path) -> None:
    """A table in the way of the first migration. It used to leave `quartchat migrate`
    hanging on SQLite, aiosqlite's thread never closed."""
    database = tmp_path / "taken.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE rooms (x)")
    result = run_command(tmp_path, "migrate", env={"DATABASE_URL": f"sqlite://{database}"})
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = error_lines(result.stdout)
    assert line.endswith(
        f'migration failed on the database at {database}: OperationalError: table "rooms" '
        "already exists"
    )


@pytest.mark.service
async def test_redis_down_at_start_serves_degraded_then_connects(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.stop()  # down before the server starts; its port stays reserved for it
    server = start_server(tmp_path, env={"REDIS_URL": redis.url})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            health = await http.get("/health")
            assert health.status_code == 200
            assert health.json() == {
                "status": "degraded",
                "database": "ok",
                "broker": "unavailable",
                "fast_paths": "ok",
            }
            [down] = [line for line in server.log().splitlines() if "Redis at" in line]
            assert f"broker: Redis at 127.0.0.1:{redis.port} does not answer (" in down
            assert " WARNING " in down and "degraded" in down
            room, user = await create_room(http), await create_user(http)
            async with open_socket(server, room["id"], user["id"]) as ws:  # its own sockets
                await ws.send('{"type": "ping"}')
                await receive_type(ws, "pong")
            redis.start()
            deadline = asyncio.get_running_loop().time() + 20
            while (await http.get("/health")).json()["broker"] != "ok":
                assert asyncio.get_running_loop().time() < deadline, server.log()
                await asyncio.sleep(0.1)
        assert f"broker: connected to Redis at 127.0.0.1:{redis.port}" in server.log()
        assert len([line for line in server.log().splitlines() if "Redis at" in line]) == 2
    finally:
        server.stop()
        redis.stop()


def test_migrate_waits_for_the_database_like_serve(tmp_path: Path) -> None:
    """The pre-deploy step may run while the database is still starting."""
    with silent_database() as port:
        result = run_command(
            tmp_path,
            "migrate",
            env={
                "DATABASE_URL": f"postgres://postgres:{SECRET}@127.0.0.1:{port}/chat",
                "DB_STARTUP_TIMEOUT": "1",
            },
        )
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = error_lines(result.stdout)
    assert f"the database at 127.0.0.1:{port} did not answer within 1 s" in line
    assert SECRET not in result.stdout


async def test_migrate_names_a_database_that_does_not_exist(tmp_path: Path) -> None:
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/no_such_database_for_quartchat"
    result = run_command(tmp_path, "migrate", env={"DATABASE_URL": url})
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = error_lines(result.stdout)
    assert line.endswith(
        "refused the connection (DBConnectionError <- InvalidCatalogNameError SQLSTATE 3D000); "
        "create the database, or fix its name in DATABASE_URL"
    )
