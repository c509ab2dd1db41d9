"""The chat socket through a real Hypercorn server and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import (
    RunningServer,
    assert_silent,
    create_room,
    create_user,
    open_socket,
    open_sockets,
    receive_json,
    receive_messages,
    receive_type,
    send_from_all,
    served,
    stored_messages,
)

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)


async def room_and_users(
    http: httpx.AsyncClient, *names: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    room = await create_room(http)
    return room, [await create_user(http, name) for name in names]


async def close_of(ws: Any, timeout: float = 5) -> tuple[int, str]:
    """Read until the server closes; return its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_unknown_room_or_user_closes_4404(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [user] = await room_and_users(http, "Ann")
    async with open_socket(server, "no-such-room", user["id"]) as ws:
        code, reason = await close_of(ws)
        assert code == 4404 and "room" in reason and "no-such-room" in reason
    async with open_socket(server, room["id"], "no-such-user") as ws:
        code, reason = await close_of(ws)
        assert code == 4404 and "user" in reason and "no-such-user" in reason


async def test_message_is_stored_and_broadcast_to_everyone(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    async with (
        open_socket(server, room["id"], alice["id"]) as alice_ws,
        open_socket(server, room["id"], bob["id"]) as bob_ws,
    ):
        await receive_type(alice_ws, "user_joined")
        await alice_ws.send(json.dumps({"type": "message", "content": "Hello!"}))
        [to_alice] = await receive_messages(alice_ws, 1)
        [to_bob] = await receive_messages(bob_ws, 1)
        assert to_alice == to_bob
        assert to_alice["user_id"] == alice["id"] and to_alice["username"] == "Alice"
        assert to_alice["content"] == "Hello!" and to_alice["room_id"] == room["id"]
        assert to_alice["seq"] == 1
        # The seed's format, without a type, is a message too.
        await bob_ws.send(json.dumps({"content": "Hi Alice"}))
        [reply] = await receive_messages(alice_ws, 1)
        assert reply["username"] == "Bob" and reply["seq"] == 2
    stored = (await http.get(f"/rooms/{room['id']}/messages")).json()
    assert stored[0] == to_alice
    assert stored[1] == reply


async def test_ping_gets_pong_to_sender_only(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    async with (
        open_socket(server, room["id"], alice["id"]) as alice_ws,
        open_socket(server, room["id"], bob["id"]) as bob_ws,
    ):
        await alice_ws.send('{"type":"ping"}')
        pong = await receive_type(alice_ws, "pong")
        assert pong["timestamp"].endswith("Z")
        await assert_silent(bob_ws, "pong")


async def test_typing_goes_to_others_and_is_not_stored(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    async with (
        open_socket(server, room["id"], alice["id"]) as alice_ws,
        open_socket(server, room["id"], bob["id"]) as bob_ws,
    ):
        await alice_ws.send('{"type":"typing"}')
        typing = await receive_type(bob_ws, "typing")
        assert typing == {
            "type": "typing",
            "user_id": alice["id"],
            "username": "Alice",
            "room_id": room["id"],
        }
        await assert_silent(alice_ws, "typing")
    assert (await http.get(f"/rooms/{room['id']}/messages")).json() == []


BAD_FRAMES = [
    ("not json", "INVALID_JSON"),
    ("[1, 2]", "INVALID_JSON"),
    ('"text"', "INVALID_JSON"),
    ('{"type": "dance"}', "UNKNOWN_TYPE"),
    ('{"type": "message"}', "INVALID_CONTENT"),
    ('{"type": "message", "content": 5}', "INVALID_CONTENT"),
    ('{"type": "message", "content": "  \\n "}', "INVALID_CONTENT"),
    (json.dumps({"content": "x" * 4001}), "INVALID_CONTENT"),
    ('{"content": "ok", "id": "not-a-uuid"}', "INVALID_ID"),
]


async def test_bad_frames_get_error_frames_and_the_socket_stays(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [user] = await room_and_users(http, "Ann")
    async with open_socket(server, room["id"], user["id"]) as ws:
        for raw, code in BAD_FRAMES:
            await ws.send(raw)
            error = await receive_json(ws)
            assert error["type"] == "error" and error["code"] == code, raw
            assert error["detail"]
        named = str(uuid.uuid4())
        await ws.send(json.dumps({"id": named, "content": " "}))
        error = await receive_json(ws)
        assert (error["code"], error["id"]) == ("INVALID_CONTENT", named)  # which one failed
        await ws.send(json.dumps({"content": "x" * 4000}))
        [message] = await receive_messages(ws, 1)
        assert message["seq"] == 1
    assert len((await http.get(f"/rooms/{room['id']}/messages")).json()) == 1


async def test_oversized_frame_closes_1009_and_others_keep_chatting(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    async with open_socket(server, room["id"], bob["id"]) as bob_ws:
        async with open_socket(server, room["id"], alice["id"], max_size=None) as alice_ws:
            await alice_ws.send(json.dumps({"content": "x" * (70 * 1024)}))
            code, _ = await close_of(alice_ws)
            assert code == 1009
        async with open_socket(server, room["id"], alice["id"]) as alice_again:
            await alice_again.send('{"content": "still here"}')
            [message] = await receive_messages(bob_ws, 1)
            assert message["content"] == "still here"


async def test_presence_events_count_each_users_sockets(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    async with open_socket(server, room["id"], alice["id"]) as alice_ws:
        async with open_socket(server, room["id"], bob["id"]) as bob_first:
            joined = await receive_type(alice_ws, "user_joined")
            assert joined["user_id"] == bob["id"] and joined["username"] == "Bob"
            assert joined["room_id"] == room["id"] and joined["timestamp"].endswith("Z")
            await assert_silent(bob_first, "user_joined")  # not announced to oneself
            async with open_socket(server, room["id"], bob["id"]):
                await assert_silent(alice_ws, "user_joined")  # a second tab is no new join
            await assert_silent(alice_ws, "user_left")  # Bob still has a socket open
        left = await receive_type(alice_ws, "user_left")
        assert left["user_id"] == bob["id"] and left["timestamp"].endswith("Z")


async def test_a_burst_of_joins_reaches_everyone_once_and_before_later_messages(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    """A room holds its events longer during a burst (a reconnect storm's joins) and
    still loses, repeats and reorders nothing."""
    room, [watcher, *crowd] = await room_and_users(http, "Watcher", *(f"C{i}" for i in range(40)))
    latecomer = await create_user(http, "Latecomer")
    async with AsyncExitStack() as stack:
        watcher_ws = await stack.enter_async_context(open_socket(server, room["id"], watcher["id"]))
        # Unbounded queues: the crowd reads nothing, and a client whose queue is full stops
        # reading, the close frame included.
        crowd_ws = await asyncio.gather(
            *(
                stack.enter_async_context(open_socket(server, room["id"], u["id"], max_queue=None))
                for u in crowd
            )
        )
        joined = [await receive_type(watcher_ws, "user_joined") for _ in crowd]
        assert sorted(frame["user_id"] for frame in joined) == sorted(u["id"] for u in crowd)

        latecomer_ws = await stack.enter_async_context(
            open_socket(server, room["id"], latecomer["id"])
        )
        await latecomer_ws.send('{"content": "hello after the burst"}')
        after = [await receive_json(watcher_ws) for _ in range(2)]
        assert [frame["type"] for frame in after] == ["user_joined", "message"]
        assert after[0]["user_id"] == latecomer["id"]
        assert [m["content"] for m in await receive_messages(crowd_ws[0], 1)] == [
            "hello after the burst"
        ]
        await assert_silent(watcher_ws, "user_joined")


async def test_reconnect_replays_missed_messages_after_id_and_since(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    async with open_socket(server, room["id"], alice["id"]) as alice_ws:
        await alice_ws.send('{"content": "before"}')
        [last_seen] = await receive_messages(alice_ws, 1)
        for i in range(3):
            await alice_ws.send(json.dumps({"content": f"missed {i}"}))
        await receive_messages(alice_ws, 3)
    for query in (f"after={last_seen['id']}", f"since={last_seen['timestamp']}"):
        async with open_socket(server, room["id"], bob["id"], query=query) as bob_ws:
            replayed = await receive_messages(bob_ws, 3)
            assert [m["content"] for m in replayed] == ["missed 0", "missed 1", "missed 2"]
            await bob_ws.send('{"content": "live"}')
            [live] = await receive_messages(bob_ws, 1)
            assert live["content"] == "live"
    async with open_socket(server, room["id"], bob["id"], query="after=bogus") as bob_ws:
        error = await receive_type(bob_ws, "error")
        assert error["code"] == "INVALID_AFTER"
        await bob_ws.send('{"type": "ping"}')
        await receive_type(bob_ws, "pong")


async def test_replay_seam_loses_and_repeats_nothing(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    """Reconnecting with ?after= while others keep sending: every message exactly once."""
    room, [sender, reader] = await room_and_users(http, "Sender", "Reader")
    total = 300
    async with open_socket(server, room["id"], sender["id"]) as sender_ws:
        await sender_ws.send('{"content": "first"}')
        [first] = await receive_messages(sender_ws, 1)

        async def send_rest() -> None:
            for i in range(total):
                await sender_ws.send(json.dumps({"content": f"n{i}"}))
                if i % 20 == 0:
                    await asyncio.sleep(0.005)

        sending = asyncio.create_task(send_rest())
        await asyncio.sleep(0.02)
        async with open_socket(
            server, room["id"], reader["id"], query=f"after={first['id']}"
        ) as ws:
            received = await receive_messages(ws, total, timeout=20)
            await sending
            await assert_silent(ws, "message", 0.3)
    assert [m["seq"] for m in received] == list(range(2, total + 2))


async def test_client_id_makes_socket_messages_idempotent(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    message_id = str(uuid.uuid4())
    async with (
        open_socket(server, room["id"], alice["id"]) as alice_ws,
        open_socket(server, room["id"], bob["id"]) as bob_ws,
    ):
        frame = json.dumps({"type": "message", "content": "once", "id": message_id})
        await alice_ws.send(frame)
        await alice_ws.send(frame)
        rest = await http.post(
            f"/rooms/{room['id']}/messages",
            json={"user_id": alice["id"], "content": "once", "id": message_id},
        )
        assert rest.status_code == 200
        await alice_ws.send('{"content": "next"}')
        got = await receive_messages(bob_ws, 2)
        assert (got[0]["id"], got[0]["content"]) == (message_id, "once")
        assert got[1]["content"] == "next"
        await receive_messages(alice_ws, 2)
    assert len((await http.get(f"/rooms/{room['id']}/messages")).json()) == 2


async def test_a_socket_message_reusing_an_id_of_another_room_is_refused_by_id(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [alice, bob] = await room_and_users(http, "Alice", "Bob")
    other_room = await create_room(http)
    message_id = str(uuid.uuid4())
    stored = await http.post(
        f"/rooms/{other_room['id']}/messages",
        json={"user_id": alice["id"], "content": "first", "id": message_id},
    )
    assert stored.status_code == 201
    async with (
        open_socket(server, room["id"], alice["id"]) as alice_ws,
        open_socket(server, room["id"], bob["id"]) as bob_ws,
    ):
        await alice_ws.send(json.dumps({"content": "again", "id": message_id}))
        refused = await receive_type(alice_ws, "error")
        assert (refused["code"], refused["id"]) == ("MESSAGE_ID_CONFLICT", message_id)
        await alice_ws.send('{"content": "next"}')  # the socket stays open
        [got] = await receive_messages(bob_ws, 1)
        assert got["content"] == "next"
        await assert_silent(bob_ws, "message", 0.3)
    assert [m["content"] for m in (await http.get(f"/rooms/{room['id']}/messages")).json()] == [
        "next"
    ]
    other = (await http.get(f"/rooms/{other_room['id']}/messages")).json()
    assert [(m["id"], m["content"]) for m in other] == [(message_id, "first")]


async def test_concurrent_senders_one_order_everywhere(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    senders = 10
    per_sender = 30
    room, users = await room_and_users(http, *(f"user{i}" for i in range(senders)))
    total = senders * per_sender
    async with open_sockets([(server, room["id"], user["id"]) for user in users]) as connections:
        await send_from_all(connections, per_sender)
        streams = await asyncio.gather(*(receive_messages(ws, total, 20) for ws in connections))
    stored = await stored_messages(http, room["id"])
    assert [m["seq"] for m in stored] == list(range(1, total + 1))
    for stream in streams:
        assert stream == stored
    for index in range(senders):
        mine = [m["content"] for m in stored if m["content"].startswith(f"{index}:")]
        assert mine == [f"{index}:{i}" for i in range(per_sender)]


async def test_origin_is_not_required(server: RunningServer, http: httpx.AsyncClient) -> None:
    room, [user] = await room_and_users(http, "Ann")
    async with open_socket(server, room["id"], user["id"], origin=None) as ws:
        await ws.send('{"type": "ping"}')
        await receive_type(ws, "pong")


async def test_refused_origin_gets_403(tmp_path: Any) -> None:
    async with served(tmp_path, env={"CORS_ORIGINS": "https://chat.example"}) as (server, http):
        room, [user] = await room_and_users(http, "Ann")
        with pytest.raises(InvalidStatus) as refused:
            async with open_socket(server, room["id"], user["id"], origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with open_socket(server, room["id"], user["id"], origin="https://chat.example") as ws:
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong")
        async with open_socket(server, room["id"], user["id"]) as ws:
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong")
        preflight = await http.options(
            "/rooms",
            headers={
                "Origin": "https://chat.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
        other = await http.get("/rooms", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_compression_is_declined_by_default(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [user] = await room_and_users(http, "Browser-like")
    async with open_socket(server, room["id"], user["id"]) as ws:  # offers permessage-deflate
        assert ws.protocol.extensions == []
        await ws.send('{"content": "still works"}')
        [message] = await receive_messages(ws, 1)
        assert message["content"] == "still works"


async def test_plain_and_compressed_sockets_get_the_same_frames(tmp_path: Any) -> None:
    """Without permessage-deflate the server shares one encoding of each frame among
    sockets; with it (WS_COMPRESSION=true), each socket's own compressor frames it.
    Both must read the same."""
    async with served(tmp_path, env={"WS_COMPRESSION": "true"}) as (server, http):
        room, [plain_user, deflate_user] = await room_and_users(http, "Plain", "Deflate")
        contents = ["hi", "é" * 200, "😀" * 1000 + "end"]
        async with (
            open_socket(server, room["id"], plain_user["id"], compression=None) as plain,
            open_socket(server, room["id"], deflate_user["id"]) as deflated,
        ):
            assert [type(e).__name__ for e in deflated.protocol.extensions] == ["PerMessageDeflate"]
            for content in contents:
                await deflated.send(json.dumps({"content": content}))
            got_plain = await receive_messages(plain, len(contents))
            got_deflated = await receive_messages(deflated, len(contents))
    assert got_plain == got_deflated
    assert [m["content"] for m in got_plain] == contents


async def test_binary_frames_are_refused_and_the_socket_stays_open(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, [user] = await room_and_users(http, "Binary")
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send(json.dumps({"content": "as bytes"}).encode())
        refused = await receive_type(ws, "error")
        assert refused["code"] == "INVALID_JSON" and "binary" in refused["detail"]
        await ws.send(json.dumps({"content": "as text"}))
        [message] = await receive_messages(ws, 1)
        assert message["content"] == "as text"
    stored = (await http.get(f"/rooms/{room['id']}/messages")).json()
    assert [m["content"] for m in stored] == ["as text"]
