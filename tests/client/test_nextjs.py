"""A real Next.js app, as a frontend developer makes one: create-next-app's output
(pinned in tests/client/nextapp/ with its package-lock.json), the packed quartchat
tarball installed with `npm install`, docs/client.md's page and loading.tsx added (read from
the page), `next build` with NEXT_PUBLIC_CHAT_URL, `next start`, and its scenarios in
Chromium against a real quartchat. `next build` costs about a minute of CPU, and the
first `npm ci` a few more: the `nextjs` marker (`-m "not nextjs"` skips this tier)."""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.client.documented_page import (
    OpenApp,
    PageUrl,
    a_restart_mid_conversation_loses_and_repeats_nothing,
    an_unknown_room_is_shown,
    app_pages,
    two_users_see_each_message_once,
)
from tests.client.test_hook import documented_file
from tests.client.test_package import npm_pack
from tests.support import PROJECT_ROOT, RunningServer, reserved_port, start_server

pytestmark = [pytest.mark.nextjs, pytest.mark.timeout(1200)]

PINNED = Path(__file__).with_name("nextapp")
# Kept between runs: `npm ci` runs again only when the pinned lock changes.
WORKDIR = PROJECT_ROOT / ".tools" / "nextapp"
INSTALLED_LOCK = WORKDIR / ".installed-package-lock.json"
NODE_ENV = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "CI": "1"}


def run(*command: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        list(command),
        cwd=WORKDIR,
        env=env or NODE_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def install_app(tarball: Path) -> None:
    """The pinned app in WORKDIR, its dependencies from its lock, quartchat from the
    tarball, and docs/client.md's page."""
    npm = shutil.which("npm")
    assert npm, "install npm first (scripts/test does)"
    for stale in ("app", "public", ".next"):
        shutil.rmtree(WORKDIR / stale, ignore_errors=True)
    shutil.copytree(PINNED, WORKDIR, dirs_exist_ok=True)
    lock = WORKDIR / "package-lock.json"
    if not (INSTALLED_LOCK.exists() and filecmp.cmp(lock, INSTALLED_LOCK, shallow=False)):
        run(npm, "ci", "--no-audit", "--no-fund")
        shutil.copy(lock, INSTALLED_LOCK)
    run(npm, "install", "--no-audit", "--no-fund", str(tarball))
    page = WORKDIR / "app" / "room" / "[id]" / "page.tsx"
    page.parent.mkdir(parents=True)
    page.write_text(documented_file("app/room/[id]/page.tsx"))
    (page.parent / "loading.tsx").write_text(documented_file("app/room/[id]/loading.tsx"))


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "next start exited"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"next start did not answer {url} within {timeout} s")


@dataclass
class NextApp:
    origin: str
    chat: RunningServer
    chat_dir: Path

    def page_url(self) -> PageUrl:
        return lambda room_id, user_id: f"{self.origin}/room/{room_id}?user={user_id}"

    def stop_chat(self) -> None:
        assert self.chat.stop() == 0

    def start_chat(self) -> None:
        self.chat = start_server(self.chat_dir, port=self.chat.port)


@pytest.fixture(scope="module", name="next_app")
def _next_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NextApp]:
    """quartchat on a port of its own, and the app built against it and started."""
    chat_dir = tmp_path_factory.mktemp("chat")
    WORKDIR.mkdir(parents=True, exist_ok=True)
    install_app(npm_pack(tmp_path_factory.mktemp("pack")))
    app = NextApp("", start_server(chat_dir), chat_dir)
    next_bin = str(WORKDIR / "node_modules" / ".bin" / "next")
    log = chat_dir / "next-start.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        # Next.js inlines NEXT_PUBLIC_ variables into the browser bundle at build time.
        build_env = {**NODE_ENV, "NEXT_PUBLIC_CHAT_URL": app.chat.http_url}
        output = run(next_bin, "build", env=build_env)
        assert "/room/[id]" in output, output
        # next must be told its port: reserved until it listens (Node binds with
        # SO_REUSEADDR, so it may; no other process may).
        with reserved_port() as port, log.open("wb") as log_file:
            process = subprocess.Popen(
                [next_bin, "start", "--port", str(port), "--hostname", "127.0.0.1"],
                cwd=WORKDIR,
                env=NODE_ENV,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as one below
            )
            app.origin = f"http://127.0.0.1:{port}"
            wait_until_serving(app.origin, process)
        yield app
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        app.chat.stop()


@pytest.fixture(name="open_app")
async def _open_app(browser: Browser) -> AsyncIterator[OpenApp]:
    async with app_pages(browser) as open_app:
        yield open_app


@pytest.fixture(name="chat_http")
async def _chat_http(next_app: NextApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=next_app.chat.http_url, timeout=10) as http:
        yield http


async def test_next_app_two_users_see_each_message_once_in_order(
    next_app: NextApp, open_app: OpenApp, chat_http: httpx.AsyncClient
) -> None:
    await two_users_see_each_message_once(open_app, chat_http, next_app.page_url())


async def test_next_app_shows_an_unknown_room(
    next_app: NextApp, open_app: OpenApp, chat_http: httpx.AsyncClient
) -> None:
    await an_unknown_room_is_shown(open_app, chat_http, next_app.page_url())


async def test_next_app_through_a_chat_server_restart(
    next_app: NextApp, open_app: OpenApp, chat_http: httpx.AsyncClient
) -> None:
    await a_restart_mid_conversation_loses_and_repeats_nothing(
        open_app, chat_http, next_app.page_url(), next_app.stop_chat, next_app.start_chat
    )
