"""The `quartchat` command: `python -m quartchat`, `--version`, each subcommand's help,
and `--port 0`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from quartchat.process.cli import version
from tests.support import RunningServer, free_port, wait_until_healthy


def quartchat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quartchat", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_python_dash_m_quartchat_and_version() -> None:
    result = quartchat("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"quartchat {version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", version())  # the installed distribution's


@pytest.mark.server
@pytest.mark.parametrize(
    ("command", "variables"),
    [
        ("serve", ["PORT", "HOST", "DATABASE_URL", "REDIS_URL", "DB_STARTUP_TIMEOUT"]),
        ("migrate", ["DATABASE_URL"]),
        ("health", ["PORT", "HOST"]),
    ],
)
def test_each_subcommand_names_its_environment(command: str, variables: list[str]) -> None:
    result = quartchat(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "environment variables:" in result.stdout
    for name in [*variables, "LOG_LEVEL", "LOG_FORMAT"]:
        assert name in result.stdout, name


@pytest.mark.server
async def test_port_zero_picks_a_free_port_and_logs_it(tmp_path: Path) -> None:
    unused = free_port()  # what $PORT says; --port 0 wins over it
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartchat", "serve", "--port", "0", "--host", "127.0.0.1"],
            cwd=tmp_path,
            env={
                **os.environ,
                "PORT": str(unused),
                "DATABASE_URL": f"sqlite://{tmp_path / 'chat.sqlite3'}",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, 0, log_path)
    try:
        wait_until_healthy(server)  # reads the port from the log
        assert server.port not in {0, unused}
        [line] = [line for line in server.log().splitlines() if "Running on" in line]
        assert f"Running on http://127.0.0.1:{server.port} " in line
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            assert (await http.get("/health")).status_code == 200
    finally:
        assert server.stop() == 0
