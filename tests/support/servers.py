"""A real `quartchat serve` in a subprocess on a free port, and what tests read from it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

__all__ = [
    "PROJECT_ROOT",
    "PortTakenError",
    "RunningServer",
    "free_port",
    "metric",
    "on_a_free_port",
    "reserved_port",
    "run_script",
    "script_env",
    "start_instances",
    "start_server",
    "wait_for_port",
    "wait_until_healthy",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

T = TypeVar("T")


def free_port() -> int:
    """A port free a moment ago. Another process may take it before whoever is told it
    binds it: a server of ours binds port 0 and reports its port instead, and a program
    that must be told its port (nginx, redis-server, postgres) is started through
    `on_a_free_port`, which tries another when it was taken."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A port held for a server told it in advance: bound here with SO_REUSEADDR and not
    listening, so that Linux lets a server that sets SO_REUSEADDR (Hypercorn does) bind
    it, and refuses it to every other process until the block ends."""
    with socket.socket() as reservation:
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reservation.bind(("127.0.0.1", 0))
        port: int = reservation.getsockname()[1]
        yield port


class PortTakenError(Exception):
    """A program told to listen on a port found it taken."""


def on_a_free_port(start: Callable[[int], T], attempts: int = 5) -> T:
    """`start(port)` on a `free_port()`, and again on another one as long as `start`
    raises `PortTakenError` (another process took the port in between), up to `attempts`."""
    for _ in range(attempts - 1):
        with contextlib.suppress(PortTakenError):
            return start(free_port())
    return start(free_port())


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

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far, all its threads (Linux)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
    """Start `quartchat serve` with a fresh SQLite file in `workdir`, on `port` or else on
    one the server picks itself (`PORT=0`, read back from its log by
    `wait_until_healthy`), so that no two tests race for a free port."""
    server_env = {
        **os.environ,
        "PORT": str(port or 0),
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
    log_path = workdir / f"server-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartchat.process.cli", "serve", *(args or [])],
            cwd=workdir,
            env=server_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, port or 0, log_path, server_env)
    if wait:
        wait_until_healthy(server)
    return server


def start_instances(workdir: Path, env: dict[str, str], count: int = 2) -> list[RunningServer]:
    """`count` instances of one chat (`env` names their shared database and broker),
    each in a folder of its own below `workdir` (a, b, …)."""
    servers = []
    for index in range(count):
        folder = workdir / chr(ord("a") + index)
        folder.mkdir(exist_ok=True)
        servers.append(start_server(folder, env=env))
    return servers


# Hypercorn's line once it listens; with PORT=0 the only place the port is told.
LISTENING = re.compile(r"Running on https?://\S+:(\d+) ")


def wait_for_port(server: RunningServer, timeout: float = 30) -> None:
    """Set `server.port` from the line Hypercorn logs once it listens (a server started
    with PORT=0, `--port 0` or `--bind HOST:0`); a server given its port is left alone."""
    deadline = time.monotonic() + timeout
    while server.port == 0:
        listening = LISTENING.search(server.log())
        if listening is not None:
            server.port = int(listening.group(1))
        elif server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        elif time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"server not listening within {timeout}s:\n{server.log()}")
        else:
            time.sleep(0.05)


def wait_until_healthy(server: RunningServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    wait_for_port(server, timeout)
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


def run_script(name: str, *args: str, cwd: Path) -> str:
    """Run `tests/support/scripts/NAME.py` in a fresh interpreter (Tortoise keeps the
    first engine it opens for the life of a process) in `cwd`; assert that it succeeded,
    return what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", f"tests.support.scripts.{name}", *args],
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def script_env(**overrides: str) -> dict[str, str]:
    """The environment for `python -m tests.support.…` run from another directory: the
    project on PYTHONPATH so that `tests` is found."""
    paths = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **overrides}


def metric(metrics_text: str, name: str) -> float:
    """One sample of `GET /metrics` output, by its full name (labels included)."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", metrics_text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))
