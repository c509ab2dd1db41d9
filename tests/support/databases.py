"""PostgreSQL and Redis for tests: a fresh database on the shared server, or a private
server process a test may stop and restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.servers import PortTakenError, on_a_free_port

__all__ = [
    "POSTGRES_ADMIN_URL",
    "REDIS_TEST_URL",
    "PrivatePostgres",
    "RedisServer",
    "create_postgres_database",
    "drop_postgres_database",
    "migrate_database",
]

POSTGRES_ADMIN_URL = os.environ.get(
    "QUARTCHAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("QUARTCHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def migrate_database(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`quartchat migrate` on `database_url`, run to its end (stdout and stderr kept)."""
    return subprocess.run(
        [sys.executable, "-m", "quartchat.process.cli", "migrate"],
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


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
    """A private redis-server on a free port, so a test may stop and restart it (on the
    same port: a restart cannot move, it fails if the port was taken meanwhile)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.port = on_a_free_port(self._start_on)

    def _start_on(self, port: int) -> int:
        self.port = port
        self.start()
        return port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.workdir / "redis-server.log"
        log.unlink(missing_ok=True)
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
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = log.read_text(errors="replace") if log.exists() else ""
                if "Address already in use" in output:
                    raise PortTakenError(self.port)
                raise AssertionError(f"redis-server exited:\n{output}")
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
        self.port = 0  # picked by the first start (on_a_free_port)
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
        self.port = on_a_free_port(self._start_on)

    def _start_on(self, port: int) -> int:
        self.port = port
        (self.workdir / "server.log").unlink(missing_ok=True)
        try:
            self.start()
        except subprocess.CalledProcessError:
            log = (self.workdir / "server.log").read_text(errors="replace")
            if "Address already in use" in log:
                raise PortTakenError(port) from None
            raise
        return port

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
