"""`quartchat/react`'s useRoom as a frontend installs it: the packed tarball in
node_modules, README's page.tsx (read from README, so README cannot drift) bundled with
React 19 by esbuild (`process.env.NEXT_PUBLIC_CHAT_URL` baked in, as Next.js does),
two users in Chromium against a real server."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.client.test_package import npm_pack
from tests.support import (
    PROJECT_ROOT,
    create_room,
    create_user,
    free_port,
    served,
    start_server,
    stored_messages,
    unique_id,
)

REACT_TOOLS = PROJECT_ROOT / ".tools" / "react" / "node_modules"
ESBUILD = REACT_TOOLS / ".bin" / "esbuild"
HARNESS = Path(__file__).with_name("hook")
WAIT = 60_000  # ms: generous, for a loaded 2-core machine


def readme_file(name: str) -> str:
    """The README code block that starts with the comment `// <name>`."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks: list[tuple[str, str]] = re.findall(r"```tsx\n(// (\S+)\n.*?)```", readme, re.DOTALL)
    found = [code for code, path in blocks if path == name]
    assert len(found) == 1, f"README has {len(found)} blocks for {name}"
    return found[0]


def build_app(workdir: Path, chat_url: str) -> Path:
    """A project with the tarball installed, README's page and the harnesses, bundled
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
    page.write_text(readme_file("app/room/[id]/page.tsx"))
    (page.parent / "loading.tsx").write_text(readme_file("app/room/[id]/loading.tsx"))
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
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


OpenApp = Callable[[str], Awaitable[Page]]


@pytest.fixture(name="open_app")
async def _open_app(browser: Browser) -> AsyncIterator[OpenApp]:
    contexts = []

    async def open_app(url: str) -> Page:
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(url)
        return page

    yield open_app
    for context in contexts:
        await context.close()


async def shown(page: Page) -> list[str]:
    return await page.locator("li").all_inner_texts()


async def submit(page: Page, content: str) -> None:
    await page.get_by_label("Message").fill(content)
    await page.get_by_label("Message").press("Enter")


async def test_readme_page_two_users_messages_presence_typing_and_older(
    open_app: OpenApp, tmp_path: Path
) -> None:
    async with served(tmp_path) as (server, http):
        room = await create_room(http)
        old, ann, bob = [await create_user(http, name) for name in ("Old", "Ann", "Bob")]
        for i in range(60):
            body = {"user_id": old["id"], "content": f"old {i}"}
            assert (await http.post(f"/rooms/{room['id']}/messages", json=body)).is_success
        with frontend(build_app(tmp_path / "app", server.http_url)) as origin:
            pages = [
                await open_app(f"{origin}/page.html?room={room['id']}&user={user['id']}")
                for user in (ann, bob)
            ]
            for page in pages:
                await expect(page.get_by_text("open · online: ")).to_contain_text(
                    "Ann", timeout=WAIT
                )
                await expect(page.get_by_text("open · online: ")).to_contain_text(
                    "Bob", timeout=WAIT
                )
                await expect(page.locator("li")).to_have_count(50)
            await pages[0].get_by_role("button", name="Load older").click()
            await expect(pages[0].locator("li")).to_have_count(60)
            await pages[0].get_by_label("Message").press_sequentially("typ")
            await expect(pages[1].get_by_text("Ann is typing…")).to_be_visible(timeout=WAIT)
            for i in range(5):
                await submit(pages[0], f"ann {i}")
                await submit(pages[1], f"bob {i}")
            await expect(pages[0].locator("li")).to_have_count(70, timeout=WAIT)
            await expect(pages[1].locator("li")).to_have_count(60, timeout=WAIT)
            stored = [
                f"{m['username']} {m['content']}" for m in await stored_messages(http, room["id"])
            ]
            assert len(stored) == 70
            assert await shown(pages[0]) == stored
            assert await shown(pages[1]) == stored[10:]
            assert await pages[0].get_by_role("alert").count() == 0


async def test_readme_page_shows_an_unknown_room(open_app: OpenApp, tmp_path: Path) -> None:
    async with served(tmp_path) as (server, http):
        user = await create_user(http, "Cy")
        with frontend(build_app(tmp_path / "app", server.http_url)) as origin:
            missing = unique_id("missing-room")
            page = await open_app(f"{origin}/page.html?room={missing}&user={user['id']}")
            alert = page.get_by_role("alert")
            await expect(alert).to_contain_text("NOT_FOUND", timeout=WAIT)
            await expect(alert).to_contain_text(missing)
            await expect(page.get_by_text("closed · online:")).to_be_visible()


async def test_readme_page_through_a_restart_mid_conversation(
    open_app: OpenApp, tmp_path: Path
) -> None:
    port = free_port()
    server = start_server(tmp_path, port=port)
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            room = await create_room(http)
            users = [await create_user(http, name) for name in ("Di", "Ed")]
            with frontend(build_app(tmp_path / "app", server.http_url)) as origin:
                pages = [
                    await open_app(f"{origin}/page.html?room={room['id']}&user={user['id']}")
                    for user in users
                ]
                for page in pages:
                    await expect(page.get_by_text("open · online: ")).to_contain_text(
                        "Ed", timeout=WAIT
                    )
                await submit(pages[0], "before 1")
                await submit(pages[1], "before 2")
                await expect(pages[1].locator("li")).to_have_count(2, timeout=WAIT)
                assert server.stop() == 0
                # Typed while the server is away: sent once it is back.
                await submit(pages[0], "during")
                server = start_server(tmp_path, port=port)
                await submit(pages[1], "after")
                for page in pages:
                    await expect(page.locator("li")).to_have_count(4, timeout=WAIT)
                stored = [
                    f"{m['username']} {m['content']}"
                    for m in await stored_messages(http, room["id"])
                ]
                assert sorted(stored[2:]) == ["Di during", "Ed after"]
                for page in pages:
                    assert await shown(page) == stored
                    await expect(page.get_by_text("open · online: ")).to_contain_text(
                        "Di", timeout=WAIT
                    )
                    assert await page.get_by_role("alert").count() == 0
    finally:
        server.stop()


async def test_an_inline_token_function_keeps_one_socket_through_renders(
    open_app: OpenApp, tmp_path: Path
) -> None:
    async with served(tmp_path, env={"AUTH_SECRET": "hook-secret"}) as (server, http):
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
