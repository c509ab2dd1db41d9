"""`GET /metrics` in the Prometheus text format, counting what the server did."""

from __future__ import annotations

import re

import httpx

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_messages,
    receive_type,
)


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def test_metrics_count_sockets_messages_and_errors(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    before = (await http.get("/metrics")).text
    room = await create_room(http)
    user = await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        during = await http.get("/metrics")
        assert during.headers["content-type"].startswith("text/plain")
        assert sample(during.text, "quartchat_open_sockets") >= 1
        await ws.send('{"content": "counted"}')
        await receive_messages(ws, 1)
        await ws.send("not json")
        await receive_type(ws, "error")
    after = (await http.get("/metrics")).text
    assert sample(after, "quartchat_messages_stored_total") >= (
        sample(before, "quartchat_messages_stored_total") + 1
    )
    assert sample(after, "quartchat_frames_delivered_total") > sample(
        before, "quartchat_frames_delivered_total"
    )
    assert sample(after, 'quartchat_errors_total{code="INVALID_JSON"}') >= 1
    assert sample(after, "quartchat_fanout_seconds_count") >= 1
