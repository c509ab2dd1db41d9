"""The smoke tier: every supported Python besides the one the suite runs on.

For each of 3.11, 3.12 and 3.13 (pyproject.toml's requires-python): a fresh virtualenv
with that Python, installed from requirements.lock the way the image is
(scripts/docker-install: hashes checked, quartchat non-editable), `quartchat serve`
started from an empty folder, and what every user of it touches once: REST, a message
stored and broadcast, ping and pong, close 1009, the console page in Chromium, and
SIGTERM closing sockets with 1012 before the process exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import (
    PROJECT_ROOT,
    RunningServer,
    create_room,
    create_user,
    receive_json,
    receive_messages,
    receive_type,
    stored_messages,
)
from tests.support.browser import launch_chromium
from tests.support.image import Installed, copy_build_context, start_installed

SUPPORTED = ("3.11", "3.12", "3.13")
INSTALL_TIMEOUT = 600
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * INSTALL_TIMEOUT)]


def find_python(version: str) -> str | None:
    """pyenv's newest 3.X, else `python3.X` on PATH: the first that runs."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = sorted(
        pyenv.glob(f"{version}.*/bin/python{version}"),
        key=lambda path: [int(part) for part in path.parent.parent.name.split(".")],
        reverse=True,
    )
    for candidate in [*map(str, installed), shutil.which(f"python{version}")]:
        # pyenv's shims are on PATH for versions that are not selected, and fail.
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


def test_pyproject_promises_exactly_the_tested_pythons() -> None:
    import tomllib

    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    promised = SpecifierSet(project["requires-python"])
    minors = [f"3.{minor}" for minor in range(8, 20)]
    assert [m for m in minors if promised.contains(f"{m}.0")] == list(SUPPORTED)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in SUPPORTED


@pytest.fixture(scope="module", params=SUPPORTED, name="installed")
def _installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    version: str = request.param
    python = find_python(version)
    if python is None:
        message = f"Python {version} is not installed (python{version} on PATH, or pyenv)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI's machine has every supported Python
        pytest.skip(message)
    root = tmp_path_factory.mktemp(f"python{version}")
    context = root / "context"
    copy_build_context(PROJECT_ROOT, context)
    installed = Installed(root / "venv")
    subprocess.run([python, "-m", "venv", str(installed.venv)], check=True, timeout=120)
    for step in ("dependencies", "project"):
        result = subprocess.run(
            ["scripts/docker-install", step],
            cwd=context,
            env=installed.env(),
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
        assert result.returncode == 0, f"{step} on {version}:\n{result.stdout}\n{result.stderr}"
    reported = subprocess.run(
        [str(installed.venv / "bin/python"), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert reported.startswith(version + ".")
    return installed


def start(installed: Installed, workdir: Path) -> RunningServer:
    return start_installed(installed, workdir, PROJECT_ROOT / "Dockerfile")


@pytest.fixture(scope="module", name="server")
def _server(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = start(installed, tmp_path_factory.mktemp("run") / "empty")
    yield server
    server.stop()


async def test_rest_and_a_message_stored_and_broadcast(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        assert (await http.get("/health")).status_code == 200
        room, sender, reader = (
            await create_room(http),
            await create_user(http),
            await create_user(http),
        )
        assert (await http.get(f"/rooms/{room['id']}")).json()["id"] == room["id"]
        base = f"{server.ws_url}/ws/{room['id']}"
        async with (
            connect(f"{base}/{reader['id']}", open_timeout=15) as listening,
            connect(f"{base}/{sender['id']}", open_timeout=15) as sending,
        ):
            await sending.send(json.dumps({"type": "message", "content": "smoke"}))
            for socket in (sending, listening):
                [message] = await receive_messages(socket, 1, timeout=15)
                assert (message["content"], message["user_id"]) == ("smoke", sender["id"])
        assert [m["content"] for m in await stored_messages(http, room["id"])] == ["smoke"]
        posted = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": reader["id"], "content": "rest"}
        )
        assert posted.status_code == 201, posted.text
        assert [m["content"] for m in await stored_messages(http, room["id"])] == ["smoke", "rest"]


async def test_ping_pong_and_close_1009(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        room, user = await create_room(http), await create_user(http)
    url = f"{server.ws_url}/ws/{room['id']}/{user['id']}"
    async with connect(url, open_timeout=15, max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert "timestamp" in await receive_type(ws, "pong", timeout=15)
        async with asyncio.timeout(15):
            await (await ws.ping())  # the protocol's PING, answered by the frame guard
        sending = asyncio.create_task(ws.send(json.dumps({"content": "x" * 200_000})))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(30):
                while True:
                    await ws.recv()
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.mark.browser
async def test_console_page_loads(server: RunningServer) -> None:
    async with launch_chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        response = await page.goto(f"{server.http_url}/console")
        assert response is not None and response.status == 200
        await page.wait_for_load_state("networkidle")
        assert await page.locator("script[src*='console.js']").count() == 1
        assert errors == []


async def test_sigterm_closes_sockets_with_1012_and_exits(
    installed: Installed, tmp_path: Path
) -> None:
    server = start(installed, tmp_path / "empty")
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
            room, user = await create_room(http), await create_user(http)
        async with connect(f"{server.ws_url}/ws/{room['id']}/{user['id']}", open_timeout=15) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await receive_json(ws, timeout=15)
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(15):
                    while True:
                        await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert await asyncio.to_thread(server.process.wait, 30) == 0
    finally:
        server.stop(signal.SIGKILL)
