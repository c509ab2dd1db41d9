"""The debug console in real headless Chromium against a real server."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    served,
    start_server,
    unique_id,
)


@pytest.fixture(name="page")
async def _page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield page
    await context.close()
    assert dialogs == [], f"the page opened dialogs: {dialogs}"


async def join(page: Page, room_id: str, user_id: str) -> Locator:
    await page.get_by_label("User id").fill(user_id)
    await page.get_by_label("Room id").fill(room_id)
    await page.get_by_role("button", name="Join").click()
    panel = page.get_by_role("article", name=f"{room_id} as {user_id}")
    await expect(panel.get_by_role("status")).to_have_text("connected")
    return panel


async def create_in_page(page: Page, username: str, room_name: str) -> tuple[str, str]:
    """Create a user and a room through the page's forms: (room id, user id)."""
    await page.get_by_label("Username").fill(username)
    await page.get_by_role("button", name="Create user").click()
    await expect(page.locator("#setup-status")).to_contain_text(f"Created user {username}")
    await page.get_by_label("Room name").fill(room_name)
    await page.get_by_role("button", name="Create room").click()
    await expect(page.locator("#setup-status")).to_contain_text(f"Created room {room_name}")
    room_id = await page.get_by_label("Room id").input_value()
    user_id = await page.get_by_label("User id").input_value()
    assert user_id and room_id
    return room_id, user_id


async def test_create_join_send_and_watch_frames(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    await page.goto(server.http_url + "/")
    room_id, user_id = await create_in_page(page, "Console Carol", "Console room")
    panel = await join(page, room_id, user_id)
    await panel.get_by_role("textbox", name="Message").fill("hello from the console")
    await panel.get_by_role("textbox", name="Message").press("Enter")
    messages = panel.get_by_role("region", name="Messages")
    await expect(messages).to_contain_text("Console Carol")
    await expect(messages).to_contain_text("hello from the console")
    frames = panel.get_by_role("region", name="Frames")
    await expect(frames.locator(".frame-out")).to_contain_text(['"type":"message"'])
    await expect(frames.locator(".frame-in").filter(has_text='"seq":1')).to_have_count(1)
    await expect(panel.get_by_role("region", name="Online")).to_contain_text("Console Carol")

    await panel.get_by_role("button", name="Ping", exact=True).click()
    await expect(panel.locator(".rtt")).to_have_text(re.compile(r"RTT \d+(\.\d)? ms"))

    screenshot = Path(os.environ.get("QUARTCHAT_SCREENSHOT", tmp_path / "console.png"))
    await page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000

    async with httpx.AsyncClient(base_url=server.http_url) as http:
        stored = (await http.get(f"/rooms/{room_id}/messages")).json()
    assert [m["content"] for m in stored] == ["hello from the console"]


async def test_second_participant_presence_typing_and_messages(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    room = await create_room(http, "Pair room")
    carol = await create_user(http, "Carol")
    dave = await create_user(http, "Dave")
    await page.goto(server.http_url + "/console")
    panel = await join(page, room["id"], carol["id"])
    online = panel.get_by_role("region", name="Online")
    async with open_socket(server, room["id"], dave["id"]) as dave_ws:
        await expect(online).to_contain_text("Dave")
        await dave_ws.send(json.dumps({"content": "hi from a websockets client"}))
        await expect(panel.get_by_role("region", name="Messages")).to_contain_text(
            "hi from a websockets client"
        )
        await dave_ws.send('{"type": "typing"}')
        await expect(panel.locator(".typing-indicator")).to_have_text("Dave is typing…")
        await panel.get_by_role("button", name="Typing", exact=True).click()
        typing = await receive_type(dave_ws, "typing")
        assert typing["user_id"] == carol["id"]
        await panel.get_by_role("textbox", name="Message").fill("hi Dave")
        await panel.get_by_role("button", name="Send").click()
        from_page = await receive_type(dave_ws, "message")
        assert (from_page["content"], from_page["username"]) == ("hi Dave", "Carol")
    await expect(online).not_to_contain_text("Dave")
    await expect(online).to_contain_text("Carol")


async def test_html_is_shown_as_text(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    user = await create_user(http, "<b>bold</b> name")
    await page.goto(server.http_url + "/")
    panel = await join(page, room["id"], user["id"])
    payload = "<img src=x onerror=alert(1)>"
    await panel.get_by_role("textbox", name="Message").fill(payload)
    await panel.get_by_role("textbox", name="Message").press("Enter")
    messages = panel.get_by_role("region", name="Messages")
    await expect(messages.locator(".content")).to_have_text([payload])
    await expect(messages.locator(".username")).to_have_text(["<b>bold</b> name"])
    assert await page.locator(".panel img, .panel b").count() == 0


async def test_console_forbids_inline_script_and_sniffing(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (await http.get("/static/console.js")).headers["x-content-type-options"] == "nosniff"


async def test_pick_existing_user_and_room_from_lists(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    tag = unique_id("listed")
    room = await create_room(http, f"{tag} room")
    user = await create_user(http, f"{tag} user")
    await page.goto(server.http_url + "/")
    # The lists show one page; a search (any case) finds these among every other test's.
    await page.get_by_label("Search").fill(tag.upper())
    await expect(page.get_by_label("Existing users").locator("option")).to_have_count(2)
    await expect(page.get_by_label("Existing rooms").locator("option")).to_have_count(2)
    await page.get_by_label("Existing users").select_option(user["id"])
    await page.get_by_label("Existing rooms").select_option(room["id"])
    await expect(page.get_by_label("User id")).to_have_value(user["id"])
    await expect(page.get_by_label("Room id")).to_have_value(room["id"])
    await join(page, room["id"], user["id"])


async def test_two_panels_talk_to_each_other(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    erin, frank = await create_user(http, "Erin"), await create_user(http, "Frank")
    await page.goto(server.http_url + "/")
    erin_panel = await join(page, room["id"], erin["id"])
    frank_panel = await join(page, room["id"], frank["id"])
    await expect(erin_panel.get_by_role("region", name="Online")).to_contain_text("Frank")
    await frank_panel.get_by_role("textbox", name="Message").fill("Erin, can you hear me?")
    await frank_panel.get_by_role("textbox", name="Message").press("Enter")
    await expect(erin_panel.get_by_role("region", name="Messages")).to_contain_text(
        "Erin, can you hear me?"
    )
    await erin_panel.get_by_role("button", name="Leave").click()
    await expect(erin_panel).to_have_count(0)
    await expect(frank_panel.get_by_role("region", name="Online")).not_to_contain_text("Erin")


async def test_unknown_room_shows_4404_and_its_meaning(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    user = await create_user(http)
    await page.goto(server.http_url + "/")
    await page.get_by_label("User id").fill(user["id"])
    missing = unique_id("missing-room")
    await page.get_by_label("Room id").fill(missing)
    await page.get_by_role("button", name="Join").click()
    panel = page.get_by_role("article", name=f"{missing} as {user['id']}")
    await expect(panel.get_by_role("region", name="Frames")).to_contain_text(
        "4404 unknown room or user"
    )
    await expect(panel.get_by_role("status")).to_contain_text("closed")


async def test_polling_switch_receives_rest_messages(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    gina, hal = await create_user(http, "Gina"), await create_user(http, "Hal")
    await page.goto(server.http_url + "/")
    panel = await join(page, room["id"], gina["id"])
    await panel.get_by_label("Polling").check()
    await expect(panel.get_by_role("status")).to_have_text("polling every 3 s")
    response = await http.post(
        f"/rooms/{room['id']}/messages", json={"user_id": hal["id"], "content": "posted over REST"}
    )
    assert response.status_code == 201
    messages = panel.get_by_role("region", name="Messages")
    await expect(messages).to_contain_text("posted over REST", timeout=8000)
    await expect(panel.get_by_role("region", name="Frames")).to_contain_text(
        f"GET /rooms/{room['id']}/messages?since="
    )
    await panel.get_by_role("textbox", name="Message").fill("sent while polling")
    await panel.get_by_role("textbox", name="Message").press("Enter")
    await expect(messages).to_contain_text("sent while polling")
    await panel.get_by_label("Polling").uncheck()
    await expect(panel.get_by_role("status")).to_have_text("connected")
    await expect(messages.locator(".message")).to_have_count(2)


async def test_reconnects_after_restart_and_replays(page: Page, tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            room = await create_room(http)
            ivy = await create_user(http, "Ivy")
            await page.goto(server.http_url + "/")
            panel = await join(page, room["id"], ivy["id"])
            await panel.get_by_role("textbox", name="Message").fill("before the restart")
            await panel.get_by_role("textbox", name="Message").press("Enter")
            messages = panel.get_by_role("region", name="Messages")
            await expect(messages).to_contain_text("before the restart")
            server.stop()
            await expect(panel.get_by_role("region", name="Frames")).to_contain_text(
                "1012 server restart"
            )
            server = start_server(tmp_path, port=server.port)
            missed = await http.post(
                f"/rooms/{room['id']}/messages", json={"user_id": ivy["id"], "content": "missed"}
            )
            assert missed.status_code == 201
            await expect(panel.get_by_role("status")).to_have_text("connected", timeout=15000)
            await expect(messages).to_contain_text("missed", timeout=10000)
            await expect(messages.locator(".message")).to_have_count(2)
            await expect(panel.get_by_role("region", name="Frames")).to_contain_text("?after=")
    finally:
        server.stop()


async def test_fits_a_phone_screen(
    server: RunningServer, browser: Browser, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    user = await create_user(http, "Phone user")
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    try:
        await page.goto(server.http_url + "/")
        await join(page, room["id"], user["id"])
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
    finally:
        await context.close()


async def test_console_uses_the_tokens_of_users_it_created(page: Page, tmp_path: Path) -> None:
    server = start_server(
        tmp_path, env={"AUTH_SECRET": "console-secret-9e107d9d372bb6826bd81d3542a419d6"}
    )
    try:
        await page.goto(server.http_url + "/")
        room_id, user_id = await create_in_page(page, "Token holder", "Secured room")
        # Lists need a token too: the page reads them with its user's.
        users = page.get_by_label("Existing users")
        await expect(users.locator(f'option[value="{user_id}"]')).to_have_count(1)
        panel = await join(page, room_id, user_id)
        await panel.get_by_role("textbox", name="Message").fill("signed in")
        await panel.get_by_role("textbox", name="Message").press("Enter")
        await expect(panel.get_by_role("region", name="Messages")).to_contain_text("signed in")
    finally:
        server.stop()


async def test_console_creates_a_private_room_and_adds_a_member(page: Page, tmp_path: Path) -> None:
    secret = "console-secret-45c48cce2e2d7fbdea1afc51c7c6ad26"
    server = start_server(tmp_path, env={"AUTH_SECRET": secret})
    try:
        await page.goto(server.http_url + "/")
        await page.get_by_label("Username").fill("Guest")
        await page.get_by_role("button", name="Create user").click()
        await expect(page.locator("#setup-status")).to_contain_text("Created user Guest")
        guest_id = await page.get_by_label("User id").input_value()
        await page.get_by_label("Username").fill("Owner")
        await page.get_by_role("button", name="Create user").click()
        await expect(page.locator("#setup-status")).to_contain_text("Created user Owner")
        owner_id = await page.get_by_label("User id").input_value()
        await page.get_by_label("Room name").fill("Back room")
        await page.get_by_label("Private").check()
        await page.get_by_role("button", name="Create room").click()
        status = page.locator("#setup-status")
        await expect(status).to_contain_text("Created private room Back room")
        room_id = await page.get_by_label("Room id").input_value()
        await page.get_by_label("New member").fill(guest_id)
        await page.get_by_role("button", name="Add member").click()
        await expect(status).to_contain_text(f"Added {guest_id} to {room_id}")
        # The guest, now a member, joins and writes in it.
        await page.get_by_label("User id").fill(guest_id)
        panel = await join(page, room_id, guest_id)
        await panel.get_by_role("textbox", name="Message").fill("let in")
        await panel.get_by_role("textbox", name="Message").press("Enter")
        await expect(panel.get_by_role("region", name="Messages")).to_contain_text("let in")
        assert owner_id != guest_id
    finally:
        server.stop()


async def test_panel_names_room_and_user_and_loads_older_messages(
    server: RunningServer, page: Page, http: httpx.AsyncClient
) -> None:
    room = await create_room(http, "History room")
    user = await create_user(http, "Historian")
    for i in range(60):
        response = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": f"m{i}"}
        )
        assert response.status_code == 201
    await page.goto(server.http_url + "/")
    panel = await join(page, room["id"], user["id"])
    title = panel.locator(".panel-title")
    await expect(title).to_have_text("History room · Historian")
    await expect(title).to_have_attribute("title", re.compile(f"{room['id']}.*{user['id']}"))
    messages = panel.get_by_role("region", name="Messages")
    await expect(messages.locator(".message")).to_have_count(50)
    await expect(messages.locator(".content").first).to_have_text("m10")
    older = panel.get_by_role("button", name="Load older")
    await older.click()
    await expect(messages.locator(".message")).to_have_count(60)
    contents = await messages.locator(".content").all_text_contents()
    assert contents == [f"m{i}" for i in range(60)]
    await older.click()
    await expect(panel.get_by_role("button", name="No older messages")).to_be_visible()
    await expect(messages.locator(".message")).to_have_count(60)


@pytest.mark.parametrize("width", [1280, 390])
async def test_setup_form_lays_out_cleanly(
    server: RunningServer, browser: Browser, width: int, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(server.http_url + "/")
        setup = page.locator(".setup")
        await expect(page.get_by_label("Existing users")).to_be_visible()
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        setup_box = await setup.bounding_box()
        assert setup_box is not None
        controls = setup.locator("input, select, button")
        boxes = [await controls.nth(i).bounding_box() for i in range(await controls.count())]
        for box in boxes:
            assert box is not None
            assert setup_box["x"] <= box["x"]
            assert box["x"] + box["width"] <= setup_box["x"] + setup_box["width"]
        for i, first in enumerate(boxes):
            for second in boxes[i + 1 :]:
                assert first is not None and second is not None
                apart = (
                    first["x"] + first["width"] <= second["x"]
                    or second["x"] + second["width"] <= first["x"]
                    or first["y"] + first["height"] <= second["y"]
                    or second["y"] + second["height"] <= first["y"]
                )
                assert apart, (first, second)
        screenshots = Path(os.environ.get("QUARTCHAT_SCREENSHOT_DIR", tmp_path))
        await setup.screenshot(path=str(screenshots / f"setup-{width}.png"))
    finally:
        await context.close()


@pytest.mark.server
async def test_console_can_be_switched_off(tmp_path: Path) -> None:
    async with served(tmp_path, env={"CONSOLE_ENABLED": "false"}) as (_, http):
        for path in ("/", "/console", "/static/console.js", "/static/console.css"):
            response = await http.get(path)
            assert response.status_code == 404
            assert response.json()["code"] == "NOT_FOUND"
            assert response.headers["content-type"].startswith("application/json")
        assert (await http.get("/docs")).status_code == 200  # from the same static folder
        assert (await http.get("/static/docs.js")).status_code == 200
        room = await create_room(http)  # the API itself is untouched
        assert (await http.get(f"/rooms/{room['id']}")).status_code == 200


async def test_static_files_are_served_with_their_own_types(http: httpx.AsyncClient) -> None:
    module = await http.get("/static/quartchat.js")
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"
    declarations = await http.get("/static/quartchat.d.ts")
    assert declarations.status_code == 200
    assert declarations.headers["content-type"] == "application/typescript; charset=utf-8"
    missing = await http.get("/static/nothing-here.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
