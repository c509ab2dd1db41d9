"""quartchat.js in Chromium, imported by a page on another origin, against real servers:
exactly-once delivery in seq order across redeploys, offline sends, a proxy that
refuses WebSocket upgrades, and the close codes that must not be retried."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from tests.client.conftest import CONSOLE, OpenPage
from tests.client.proxy import UpgradeRefusingProxy
from tests.support import (
    RunningServer,
    create_room,
    create_user,
    open_socket,
    served,
    start_server,
    stored_messages,
    unique_id,
)

WAIT = 60_000  # ms: generous, for a loaded 2-core machine
CLIENT_SECRET = "client-secret-e4d909c290d0fb1ca068ffaddf22cbd0"


async def join(page: Page, url: str, room_id: str, user_id: str, **options: Any) -> str:
    tokens = options.pop("tokens", None)
    result: str = await page.evaluate(
        "([options, tokens]) => join(options, tokens)",
        [{"url": url, "roomId": room_id, "userId": user_id, **options}, tokens],
    )
    return result


async def pages_in_a_room(
    open_page: OpenPage, http: httpx.AsyncClient, url: str, *usernames: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Page]]:
    """A fresh room, a user per name, and a page per user that has joined the room."""
    room = await create_room(http)
    users = [await create_user(http, name) for name in usernames]
    pages = [await open_page(url) for _ in users]
    for page, user in zip(pages, users, strict=True):
        assert await join(page, url, room["id"], user["id"]) == "opened"
    return room, users, pages


async def wait_until(page: Page, condition: str) -> None:
    """Wait for a JavaScript condition on the page; on timeout, say what the page saw."""
    try:
        await page.wait_for_function(condition, timeout=WAIT)
    except PlaywrightError:
        seen = await page.evaluate(
            "JSON.stringify({status: room.status, statuses: log.statuses, errors: log.errors,"
            " sent: log.sent.length, sendErrors: log.sendErrors, frames: log.frames.slice(-30)},"
            " null, 1)"
        )
        console = "\n".join(CONSOLE[page][-30:])
        raise AssertionError(f"{condition} still false; the page saw {seen}\n{console}") from None


async def wait_for_messages(page: Page, count: int) -> list[dict[str, Any]]:
    await wait_until(page, f"log.messages.length >= {count}")
    messages: list[dict[str, Any]] = await page.evaluate("log.messages")
    return messages


async def wait_for_status(page: Page, status: str) -> None:
    await wait_until(page, f"room.status === {status!r}")


def assert_in_seq_order(messages: list[dict[str, Any]], first_seq: int = 1) -> None:
    assert [m["seq"] for m in messages] == list(range(first_seq, first_seq + len(messages)))


async def test_served_as_a_module_to_other_origins(
    http: httpx.AsyncClient, app_origin: str
) -> None:
    response = await http.get("/static/quartchat.js", headers={"Origin": app_origin})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["access-control-allow-origin"] in {"*", app_origin}
    assert "export class Room extends EventTarget" in response.text


@pytest.mark.server
async def test_only_allowed_origins_may_import_it_console_or_not(
    tmp_path: Path, app_origin: str
) -> None:
    env = {"CORS_ORIGINS": app_origin, "CONSOLE_ENABLED": "false"}
    async with served(tmp_path, env=env) as (_, http):
        allowed = await http.get("/static/quartchat.js", headers={"Origin": app_origin})
        assert allowed.headers["access-control-allow-origin"] == app_origin
        assert allowed.headers["content-type"].startswith("text/javascript")
        other = await http.get("/static/quartchat.js", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers


async def test_two_pages_see_each_message_once_in_the_same_order(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room, (_, bob), pages = await pages_in_a_room(open_page, http, server.http_url, "Ann", "Bob")
    for page in pages:
        assert await page.evaluate("room.status") == "open"
    await pages[0].wait_for_function("room.presence.length === 2", timeout=WAIT)
    assert await pages[1].evaluate("[room.typing(), room.typing()]") == [True, False]
    await wait_until(pages[0], "log.typing.length === 1")
    assert (await pages[0].evaluate("log.typing"))[0]["user_id"] == bob["id"]
    for i in range(10):
        for page, name in zip(pages, ("ann", "bob"), strict=True):
            await page.evaluate(f"send('{name} {i}')")
    seen = [await wait_for_messages(page, 20) for page in pages]
    assert seen[0] == seen[1]
    assert_in_seq_order(seen[0])
    assert sorted(m["content"] for m in seen[0]) == sorted(
        f"{name} {i}" for name in ("ann", "bob") for i in range(10)
    )
    assert seen[0] == await stored_messages(http, room["id"])
    for page in pages:
        await wait_until(page, "log.sent.length === 10")
        assert await page.evaluate("log.sendErrors") == []


async def test_redeploy_mid_conversation_loses_and_repeats_nothing(
    open_page: OpenPage, tmp_path: Path
) -> None:
    server = start_server(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            room, _, pages = await pages_in_a_room(open_page, http, server.http_url, "Cy", "Di")
            per_page = 30
            for index, page in enumerate(pages):
                # Both pages keep sending, every 100 ms, through the restart below.
                await page.evaluate(
                    """([index, count]) => { let i = 0; const timer = setInterval(() => {
                         send(`page${index} ${i}`); if (++i === count) clearInterval(timer);
                       }, 100); }""",
                    [index, per_page],
                )
            await pages[0].wait_for_function("log.sent.length >= 5", timeout=WAIT)
            assert server.stop() == 0
            server = start_server(tmp_path, port=server.port)
            for page in pages:
                await wait_until(page, f"log.sent.length === {per_page}")
                assert await page.evaluate("log.sendErrors") == []
            stored = await stored_messages(http, room["id"])
            assert len(stored) == 2 * per_page
            assert sorted(m["content"] for m in stored) == sorted(
                f"page{index} {i}" for index in range(2) for i in range(per_page)
            )
            for page in pages:
                assert await wait_for_messages(page, 2 * per_page) == stored
                await wait_for_status(page, "open")
                assert_in_seq_order(await page.evaluate("log.messages"))
    finally:
        server.stop()


async def test_messages_sent_offline_are_delivered_once_when_the_server_returns(
    open_page: OpenPage, tmp_path: Path
) -> None:
    server = start_server(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            room, _, (sender, reader) = await pages_in_a_room(
                open_page, http, server.http_url, "Eve", "Fay"
            )
            await sender.evaluate("send('before')")
            await wait_for_messages(reader, 1)
            server.stop()
            (tmp_path / "before-restart.log").write_text(server.log())
            await wait_for_status(sender, "reconnecting")
            for i in range(3):
                await sender.evaluate(f"send('offline {i}')")
            assert await sender.evaluate("log.sent.length") == 1
            server = start_server(tmp_path, port=server.port)
            await wait_until(sender, "log.sent.length === 4")
            expected = ["before", "offline 0", "offline 1", "offline 2"]
            for page in (sender, reader):
                messages = await wait_for_messages(page, 4)
                assert [m["content"] for m in messages] == expected
                assert_in_seq_order(messages)
            assert [m["content"] for m in await stored_messages(http, room["id"])] == expected
            assert await sender.evaluate("log.sendErrors") == []
    finally:
        server.stop()


async def test_polls_through_a_proxy_refusing_upgrades_then_returns_to_the_socket(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    gus, hal = await create_user(http, "Gus"), await create_user(http, "Hal")
    async with UpgradeRefusingProxy(server.port) as proxy:
        page = await open_page(proxy.http_url)
        result = await join(page, proxy.http_url, room["id"], gus["id"], pollInterval=500)
        assert result == "opened"
        assert await page.evaluate("room.status") == "polling"
        assert proxy.refused >= 1
        await page.evaluate("send('sent while polling')")
        posted = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": hal["id"], "content": "from Hal"}
        )
        assert posted.status_code == 201
        await wait_for_messages(page, 2)
        assert await page.evaluate("log.sent.length") == 1

        proxy.refuse_upgrades = False
        await wait_for_status(page, "open")
        await page.evaluate("send('sent on the socket')")
        posted = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": hal["id"], "content": "again"}
        )
        assert posted.status_code == 201
        messages = await wait_for_messages(page, 4)
        assert messages == await stored_messages(http, room["id"])
        assert_in_seq_order(messages)
        assert await page.evaluate("log.statuses") == ["connecting", "polling", "open"]


def handshakes(server: RunningServer, room_id: str) -> int:
    return sum(f"/ws/{room_id}/" in line for line in server.log().splitlines())


async def test_close_leaves_the_room_and_goes_quiet(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    ann, bob = await create_user(http, "Ann"), await create_user(http, "Bob")
    leaving, staying = await open_page(server.http_url), await open_page(server.http_url)
    options = {"url": server.http_url, "roomId": room["id"], "userId": ann["id"]}
    assert await leaving.evaluate("(o) => new quartchat.Room(o).status", options) == "closed"
    assert await join(leaving, server.http_url, room["id"], ann["id"], keepAlive=300) == "opened"
    assert await join(staying, server.http_url, room["id"], bob["id"]) == "opened"
    await wait_until(staying, "room.presence.length === 2")
    await leaving.evaluate("room.close()")
    assert await leaving.evaluate("[room.status, log.statuses.at(-1)]") == ["closed", "closed"]
    await wait_until(staying, "room.presence.length === 1")
    present = (await http.get(f"/rooms/{room['id']}/presence")).json()
    assert [user["user_id"] for user in present] == [bob["id"]]
    frames = await leaving.evaluate("log.frames.length")
    await staying.evaluate("send('after the close')")
    await wait_for_messages(staying, 1)
    await asyncio.sleep(1.5)  # five of the closed room's keep-alive intervals
    assert await leaving.evaluate("[log.frames.length, log.messages.length]") == [frames, 0]


async def test_unknown_room_closes_4404_without_retrying(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    user = await create_user(http)
    missing = unique_id("missing-room")
    page = await open_page(server.http_url)
    assert await join(page, server.http_url, missing, user["id"]) == "NOT_FOUND 4404"
    assert await page.evaluate("room.status") == "closed"
    errors = await page.evaluate("log.errors")
    assert [e["closeCode"] for e in errors] == [4404]
    assert missing in errors[0]["detail"]
    await page.evaluate("send('into the void')")
    await wait_until(page, "log.sendErrors.length === 1")
    # the first retry would come within a second; wait a few for any
    await asyncio.sleep(3)
    assert handshakes(server, missing) == 1


async def test_a_private_room_closes_4403_without_retrying(
    open_page: OpenPage, tmp_path: Path
) -> None:
    async with served(tmp_path, env={"AUTH_SECRET": CLIENT_SECRET}) as (server, http):
        owner = (await http.post("/users", json={"username": "Ida"})).json()
        outsider = (await http.post("/users", json={"username": "Bob"})).json()
        headers = {"Authorization": f"Bearer {owner['token']}"}
        body = {"name": "Members only", "private": True}
        room = (await http.post("/rooms", json=body, headers=headers)).json()
        page = await open_page(server.http_url)
        tokens = [outsider["token"]]
        joined = await join(page, server.http_url, room["id"], outsider["id"], tokens=tokens)
        assert joined == "NOT_A_MEMBER 4403"
        assert await page.evaluate("room.status") == "closed"
        errors = await page.evaluate("log.errors")
        assert [e["closeCode"] for e in errors] == [4403]
        await asyncio.sleep(3)  # the first retry would come within a second
        assert handshakes(server, room["id"]) == 1


async def test_a_refused_token_asks_the_token_function_again(
    open_page: OpenPage, tmp_path: Path
) -> None:
    # open() reads history first, so here the REST 401 is what asks again.
    async with served(tmp_path, env={"AUTH_SECRET": CLIENT_SECRET}) as (server, http):
        user = (await http.post("/users", json={"username": "Ida"})).json()
        headers = {"Authorization": f"Bearer {user['token']}"}
        room = (await http.post("/rooms", json={"name": "Locked"}, headers=headers)).json()
        page = await open_page(server.http_url)
        tokens = ["expired-or-forged", user["token"]]
        assert await join(page, server.http_url, room["id"], user["id"], tokens=tokens) == "opened"
        assert await page.evaluate("log.tokenCalls") == 2
        assert await page.evaluate("room.status") == "open"
        await page.evaluate("send('with a fresh token')")
        await wait_until(page, "log.sent.length === 1")

        refused = await open_page(server.http_url)
        bad = ["forged", "still forged"]
        assert await join(refused, server.http_url, room["id"], user["id"], tokens=bad) == (
            "UNAUTHORIZED 4401"
        )
        assert await refused.evaluate("log.tokenCalls") == 2
        assert await refused.evaluate("room.status") == "closed"


async def test_the_socket_carries_its_token_in_a_subprotocol_not_its_url(
    open_page: OpenPage, tmp_path: Path
) -> None:
    async with served(tmp_path, env={"AUTH_SECRET": CLIENT_SECRET}) as (server, http):
        user = (await http.post("/users", json={"username": "Uma"})).json()
        headers = {"Authorization": f"Bearer {user['token']}"}
        room = (await http.post("/rooms", json={"name": "Locked"}, headers=headers)).json()
        page = await open_page(server.http_url)
        assert await join(page, server.http_url, room["id"], user["id"], token=user["token"]) == (
            "opened"
        )
        [opened] = [f for f in await page.evaluate("log.frames") if f.startswith("open ws")]
        assert f"/ws/{room['id']}/{user['id']}?" in opened
        assert "token" not in opened and user["token"] not in opened
        assert await page.evaluate("room._socket.url.includes('token')") is False
        assert await page.evaluate("room._socket.protocol") == "quartchat"
        await page.evaluate("send('authenticated without a token in the URL')")
        await wait_until(page, "log.sent.length === 1")
        assert user["token"] not in server.log()


async def test_a_token_that_expired_while_open_is_replaced_on_the_4401(
    open_page: OpenPage, tmp_path: Path
) -> None:
    # Token ages count whole seconds: one is refused once more than TTL seconds have
    # passed since the second it was issued in, so up to TTL + 2 s after.
    env = {"AUTH_SECRET": CLIENT_SECRET, "AUTH_TOKEN_TTL": "8"}
    async with served(tmp_path, env=env) as (server, http):
        user = (await http.post("/users", json={"username": "Ivo"})).json()
        loop = asyncio.get_running_loop()
        first_issued = loop.time()
        headers = {"Authorization": f"Bearer {user['token']}"}
        room = (await http.post("/rooms", json={"name": "Locked"}, headers=headers)).json()
        page = await open_page(server.http_url)
        await asyncio.sleep(4)
        renewed = await http.post(f"/users/{user['id']}/token", headers=headers)
        tokens = [user["token"], renewed.json()["token"]]
        options = {"tokens": tokens, "pollInterval": 600_000}  # no REST reads meanwhile
        assert await join(page, server.http_url, room["id"], user["id"], **options) == "opened"
        await page.evaluate("room.setPolling(true)")  # off the socket, as when one drops
        await asyncio.sleep(max(0.0, first_issued + 10.2 - loop.time()))  # the first expired
        await page.evaluate("room.setPolling(false)")  # the reconnect still holds it
        await wait_until(
            page, "room.status === 'open' && log.frames.some((f) => f.startsWith('close 4401'))"
        )
        assert await page.evaluate("log.tokenCalls") == 2
        await page.evaluate("send('after the renewal')")
        await wait_until(page, "log.sent.length === 1")


async def test_load_older_pages_back_to_the_first_message(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    user = await create_user(http)
    for i in range(200):
        response = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": f"m{i}"}
        )
        assert response.status_code == 201
    page = await open_page(server.http_url)
    assert await join(page, server.http_url, room["id"], user["id"], history=50) == "opened"
    assert [m["seq"] for m in await page.evaluate("room.messages")] == list(range(151, 201))
    pages: list[list[dict[str, Any]]] = []
    while older := await page.evaluate("room.loadOlder(60)"):
        pages.append(older)
    assert [len(p) for p in pages] == [60, 60, 30]
    assert [m["seq"] for p in reversed(pages) for m in p] == list(range(1, 151))
    everything = await page.evaluate("room.messages")
    assert [m["content"] for m in everything] == [f"m{i}" for i in range(200)]
    assert everything == await stored_messages(http, room["id"])
    assert await page.evaluate("room.loadOlder(60)") == []


async def test_a_gap_is_read_over_rest_before_later_messages(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    jo, kim = await create_user(http, "Jo"), await create_user(http, "Kim")
    page = await open_page(server.http_url)
    assert await join(page, server.http_url, room["id"], jo["id"], pollInterval=600_000) == (
        "opened"
    )
    await page.evaluate("room.setPolling(true)")
    await wait_for_status(page, "polling")
    for i in range(3):
        posted = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": kim["id"], "content": f"k{i}"}
        )
        assert posted.status_code == 201
    # The next poll is ten minutes away: the POST's answer (seq 4) reveals the gap.
    await page.evaluate("send('mine')")
    messages = await wait_for_messages(page, 4)
    assert [m["content"] for m in messages] == ["k0", "k1", "k2", "mine"]
    assert_in_seq_order(messages)


async def test_outbox_resends_what_the_rate_limit_refused(
    open_page: OpenPage, tmp_path: Path
) -> None:
    limits = {"RATE_LIMIT_PER_SECOND": "4", "RATE_LIMIT_BURST": "3", "RATE_LIMIT_STRIKES": "1000"}
    async with served(tmp_path, env=limits) as (server, http):
        room, _, [page] = await pages_in_a_room(open_page, http, server.http_url, "Lee")
        await page.evaluate("for (let i = 0; i < 15; i++) send(`burst ${i}`)")
        await wait_until(page, "log.sent.length === 15")
        assert await page.evaluate("log.sendErrors") == []
        refused = await page.evaluate("log.errors.filter((e) => e.code === 'RATE_LIMITED')")
        assert refused, "the burst should have met the rate limit"
        stored = await stored_messages(http, room["id"])
        assert sorted(m["content"] for m in stored) == sorted(f"burst {i}" for i in range(15))
        assert await wait_for_messages(page, 15) == stored


async def test_a_refused_message_fails_alone_and_nothing_is_resent_over_rest(
    open_page: OpenPage, tmp_path: Path
) -> None:
    async with served(tmp_path) as (server, http):
        room, _, [page] = await pages_in_a_room(open_page, http, server.http_url, "Ola")
        await page.evaluate("send('ok 1'); send('\\u200b'); send('ok 2')")
        await wait_until(page, "log.sent.length === 2 && log.sendErrors.length === 1")
        assert "INVALID_CONTENT" in (await page.evaluate("log.sendErrors"))[0]
        stored = await stored_messages(http, room["id"])
        assert [m["content"] for m in stored] == ["ok 1", "ok 2"]
    # The server named the blank one, so the others were not sent again over REST.
    assert "POST /rooms/" not in server.log()


async def test_a_socket_without_pongs_is_dropped_and_replaced(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    mo, ned = await create_user(http, "Mo"), await create_user(http, "Ned")
    async with UpgradeRefusingProxy(server.port) as proxy:
        proxy.refuse_upgrades = False
        page = await open_page(proxy.http_url)
        assert await join(page, proxy.http_url, room["id"], mo["id"], keepAlive=500) == "opened"
        await wait_until(page, "room.rtt !== null")
        proxy.stall()
        posted = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": ned["id"], "content": "unheard"}
        )
        assert posted.status_code == 201
        await wait_until(page, "log.statuses.includes('reconnecting')")
        await wait_for_status(page, "open")
        messages = await wait_for_messages(page, 1)
        assert [m["content"] for m in messages] == ["unheard"]
        frames = await page.evaluate("log.frames")
        assert any("no pong for two keep-alive intervals" in frame for frame in frames)


async def test_4429_backs_off_for_seconds_then_connects(
    open_page: OpenPage, tmp_path: Path
) -> None:
    async with served(tmp_path, env={"MAX_SOCKETS_PER_USER": "1"}) as (server, http):
        room = await create_room(http)
        user = await create_user(http, "Ona")
        page = await open_page(server.http_url)
        async with open_socket(server, room["id"], user["id"]):
            await page.evaluate(
                "([options]) => { join(options); }",
                [{"url": server.http_url, "roomId": room["id"], "userId": user["id"]}],
            )
            await wait_until(page, "log.errors.some((e) => e.closeCode === 4429)")
            assert await page.evaluate("room.status") == "reconnecting"
            # 4429 waits at least 2.5 s before its next try (plain failures: 0.25 s),
            # measured by the page's own clock, which a loaded machine cannot skew
            await wait_until(page, "log.frames.filter((f) => f.startsWith('open ')).length >= 2")
            waited_ms = await page.evaluate(
                """() => {
                  const refused = log.errorTimes[log.errors.findIndex((e) => e.closeCode === 4429)];
                  const opens = log.frameTimes.filter((_, i) => log.frames[i].startsWith("open "));
                  return opens[1] - refused;
                }"""
            )
            assert waited_ms >= 2500, waited_ms
        await wait_for_status(page, "open")
