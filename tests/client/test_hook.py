"""`quartchat/react`'s useRoom as a frontend installs it: the packed tarball in
node_modules, docs/client.md's page.tsx (read from the page, so it cannot drift) bundled with
React 19 by esbuild (`process.env.NEXT_PUBLIC_CHAT_URL` baked in, as Next.js does),
two users in Chromium against a real server."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.client.documented_page import (
    WAIT,
    OpenApp,
    PageUrl,
    a_restart_mid_conversation_loses_and_repeats_nothing,
    an_unknown_room_is_shown,
    app_pages,
    two_users_see_each_message_once,
)
from tests.client.test_package import npm_pack
from tests.support import PROJECT_ROOT, served, start_server

REACT_TOOLS = PROJECT_ROOT / ".tools" / "react" / "node_modules"
ESBUILD = REACT_TOOLS / ".bin" / "esbuild"
HARNESS = Path(__file__).with_name("hook")


def documented_file(name: str) -> str:
    """The code block of docs/client.md that starts with the comment `// <name>`."""
    page = (PROJECT_ROOT / "docs" / "client.md").read_text()
    blocks: list[tuple[str, str]] = re.findall(r"```tsx\n(// (\S+)\n.*?)```", page, re.DOTALL)
    found = [code for code, path in blocks if path == name]
    assert len(found) == 1, f"docs/client.md has {len(found)} blocks for {name}"
    return found[0]


def build_app(workdir: Path, chat_url: str) -> Path:
    """A project with the tarball installed, docs/client.md's page and the harnesses, bundled
    for the browser; returns the folder to serve."""
    assert ESBUILD.exists(), "install react, react-dom and esbuild first (scripts/test does)"
    modules = workdir / "node_modules"
    modules.mkdir(parents=True)
    for installed in REACT_TOOLS.iterdir():
        if not installed.name.startswith("."):
            (modules / installed.name).symlink_to(installed)
    with tarfile.open(npm_pack(workdir)) as archive:
        archive.extractall(modules, filter="data")
    (modules / "package").rename(modules / "quartchat")
    page = workdir / "app" / "room" / "[id]" / "page.tsx"
    page.parent.mkdir(parents=True)
    page.write_text(documented_file("app/room/[id]/page.tsx"))
    (page.parent / "loading.tsx").write_text(documented_file("app/room/[id]/loading.tsx"))
    out = workdir / "out"
    for harness in HARNESS.glob("*.tsx"):
        shutil.copy(harness, workdir / harness.name)
        (out / f"{harness.stem}.html").parent.mkdir(exist_ok=True)
        (out / f"{harness.stem}.html").write_text(
            '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">'
            f'<div id="root"></div><script type="module" src="{harness.stem}.js"></script>'
        )
    result = subprocess.run(
        [
            str(ESBUILD),
            *(harness.name for harness in HARNESS.glob("*.tsx")),
            "--bundle",
            "--format=esm",
            "--jsx=automatic",
            f"--outdir={out}",
            f"--define:process.env.NEXT_PUBLIC_CHAT_URL={chat_url!r}".replace("'", '"'),
            '--define:process.env.NODE_ENV="development"',  # React's checks, strict mode
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def frontend(folder: Path) -> Iterator[str]:
    """The bundled app on its own origin (another port than the chat server's)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(name="open_app")
async def _open_app(browser: Browser) -> AsyncIterator[OpenApp]:
    async with app_pages(browser) as open_app:
        yield open_app


def page_url(origin: str) -> PageUrl:
    return lambda room_id, user_id: f"{origin}/page.html?room={room_id}&user={user_id}"


async def test_documented_page_two_users_messages_presence_typing_and_older(
    open_app: OpenApp, tmp_path: Path
) -> None:
    async with served(tmp_path) as (server, http):
        with frontend(build_app(tmp_path / "app", server.http_url)) as origin:
            await two_users_see_each_message_once(open_app, http, page_url(origin))


async def test_documented_page_shows_an_unknown_room(open_app: OpenApp, tmp_path: Path) -> None:
    async with served(tmp_path) as (server, http):
        with frontend(build_app(tmp_path / "app", server.http_url)) as origin:
            await an_unknown_room_is_shown(open_app, http, page_url(origin))


async def test_documented_page_through_a_restart_mid_conversation(
    open_app: OpenApp, tmp_path: Path
) -> None:
    servers = [start_server(tmp_path)]
    port = servers[0].port

    def stop() -> None:
        assert servers[-1].stop() == 0

    def start() -> None:
        servers.append(start_server(tmp_path, port=port))

    try:
        async with httpx.AsyncClient(base_url=servers[0].http_url, timeout=10) as http:
            with frontend(build_app(tmp_path / "app", servers[0].http_url)) as origin:
                await a_restart_mid_conversation_loses_and_repeats_nothing(
                    open_app, http, page_url(origin), stop, start
                )
    finally:
        servers[-1].stop()


async def test_an_inline_token_function_keeps_one_socket_through_renders(
    open_app: OpenApp, tmp_path: Path
) -> None:
    async with served(
        tmp_path, env={"AUTH_SECRET": "hook-secret-1679091c5a880faf6fb5e6087eb1b2dc"}
    ) as (server, http):
        user = (await http.post("/users", json={"username": "Fay"})).json()
        headers = {"Authorization": f"Bearer {user['token']}"}
        room = (await http.post("/rooms", json={"name": "Locked"}, headers=headers)).json()
        with frontend(build_app(tmp_path / "app", server.http_url)) as origin:
            query = f"room={room['id']}&user={user['id']}&token={user['token']}"
            page = await open_app(f"{origin}/rerender.html?{query}")
            await page.wait_for_function(
                "window.chat && chat.status === 'open' && window.renders > 100", timeout=WAIT
            )
            sent = await page.evaluate("chat.send('after a hundred renders')")
            assert sent["ok"] is True, sent
            assert sent["message"]["content"] == "after a hundred renders"
            handshakes = server.log().count(f"/ws/{room['id']}/")
            assert handshakes == 1, server.log()
            # Asked once, by the first request; every later request reuses its answer.
            assert await page.evaluate("window.tokenCalls") == 1
