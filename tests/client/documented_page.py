"""What docs/client.md's page (app/room/[id]/page.tsx) must do in Chromium against a real
server, whatever built it: esbuild in test_hook.py, `next build` in test_nextjs.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from playwright.async_api import Browser, Locator, Page, expect

from tests.support import create_room, create_user, stored_messages, unique_id

WAIT = 60_000  # ms: generous, for a loaded 2-core machine

OpenApp = Callable[[str], Awaitable[Page]]
# (room id, user id) -> the page's URL
PageUrl = Callable[[str, str], str]


@asynccontextmanager
async def app_pages(browser: Browser) -> AsyncIterator[OpenApp]:
    """`open_app(url)`: a page in a fresh browser context of its own, closed on exit."""
    contexts = []

    async def open_app(url: str) -> Page:
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        await page.goto(url)
        return page

    try:
        yield open_app
    finally:
        for context in contexts:
            await context.close()


def alerts(page: Page) -> Locator:
    """The page's own alerts (Next.js adds a route announcer with role="alert")."""
    return page.locator("main").get_by_role("alert")


async def shown(page: Page) -> list[str]:
    return await page.locator("li").all_inner_texts()


async def submit(page: Page, content: str) -> None:
    await page.get_by_label("Message").fill(content)
    await page.get_by_label("Message").press("Enter")


async def stored_lines(http: httpx.AsyncClient, room_id: str) -> list[str]:
    return [f"{m['username']} {m['content']}" for m in await stored_messages(http, room_id)]


async def two_users_see_each_message_once(
    open_app: OpenApp, http: httpx.AsyncClient, page_url: PageUrl
) -> None:
    """Presence, typing, "Load older", and ten messages from two pages, once and in
    order on both."""
    room = await create_room(http)
    old, ann, bob = [await create_user(http, name) for name in ("Old", "Ann", "Bob")]
    for i in range(60):
        body = {"user_id": old["id"], "content": f"old {i}"}
        assert (await http.post(f"/rooms/{room['id']}/messages", json=body)).is_success
    pages = [await open_app(page_url(room["id"], user["id"])) for user in (ann, bob)]
    for page in pages:
        online = page.get_by_text("open · online: ")
        await expect(online).to_contain_text("Ann", timeout=WAIT)
        await expect(online).to_contain_text("Bob", timeout=WAIT)
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
    stored = await stored_lines(http, room["id"])
    assert len(stored) == 70
    assert await shown(pages[0]) == stored
    assert await shown(pages[1]) == stored[10:]
    for page in pages:
        assert await alerts(page).count() == 0


async def an_unknown_room_is_shown(
    open_app: OpenApp, http: httpx.AsyncClient, page_url: PageUrl
) -> None:
    user = await create_user(http, "Cy")
    missing = unique_id("missing-room")
    page = await open_app(page_url(missing, user["id"]))
    alert = alerts(page)
    await expect(alert).to_contain_text("NOT_FOUND", timeout=WAIT)
    await expect(alert).to_contain_text(missing)
    await expect(page.get_by_text("closed · online:")).to_be_visible()


async def a_restart_mid_conversation_loses_and_repeats_nothing(
    open_app: OpenApp,
    http: httpx.AsyncClient,
    page_url: PageUrl,
    stop: Callable[[], None],
    start: Callable[[], None],
) -> None:
    """`stop()` and `start()` the server (SIGTERM, then again on the same port)."""
    room = await create_room(http)
    users = [await create_user(http, name) for name in ("Di", "Ed")]
    pages = [await open_app(page_url(room["id"], user["id"])) for user in users]
    for page in pages:
        await expect(page.get_by_text("open · online: ")).to_contain_text("Ed", timeout=WAIT)
    await submit(pages[0], "before 1")
    await submit(pages[1], "before 2")
    await expect(pages[1].locator("li")).to_have_count(2, timeout=WAIT)
    stop()
    # Typed while the server is away: sent once it is back.
    await submit(pages[0], "during")
    start()
    await submit(pages[1], "after")
    for page in pages:
        await expect(page.locator("li")).to_have_count(4, timeout=WAIT)
    stored = await stored_lines(http, room["id"])
    assert sorted(stored[2:]) == ["Di during", "Ed after"]
    for page in pages:
        assert await shown(page) == stored
        await expect(page.get_by_text("open · online: ")).to_contain_text("Di", timeout=WAIT)
        assert await alerts(page).count() == 0
