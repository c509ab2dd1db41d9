"""`GET /metrics` in the Prometheus text format, counting what the server did."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    metric,
    open_socket,
    open_sockets,
    receive_messages,
    receive_type,
    served,
)

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)


async def test_metrics_count_sockets_messages_and_errors(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    before = (await http.get("/metrics")).text
    room = await create_room(http)
    user = await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        during = await http.get("/metrics")
        assert during.headers["content-type"].startswith("text/plain")
        assert metric(during.text, "quartchat_open_sockets") >= 1
        await ws.send('{"content": "counted"}')
        await receive_messages(ws, 1)
        await ws.send("not json")
        await receive_type(ws, "error")
    after = (await http.get("/metrics")).text
    assert metric(after, "quartchat_messages_stored_total") >= (
        metric(before, "quartchat_messages_stored_total") + 1
    )
    assert metric(after, "quartchat_frames_delivered_total") > metric(
        before, "quartchat_frames_delivered_total"
    )
    assert metric(after, 'quartchat_errors_total{code="INVALID_JSON"}') >= 1
    assert metric(after, "quartchat_fanout_seconds_count") >= 1


async def test_metrics_token_keeps_metrics_private(tmp_path: Path) -> None:
    async with served(tmp_path, env={"METRICS_TOKEN": "scrape-secret"}) as (_, http):
        anonymous = await http.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "UNAUTHORIZED"
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, "INVALID_TOKEN")
        scraper = await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert scraper.status_code == 200
        assert metric(scraper.text, "quartchat_open_sockets") == 0
        assert (await http.get("/health")).status_code == 200  # the rest stays public


async def test_messages_sent_close_together_share_commits(tmp_path: Path) -> None:
    async with served(tmp_path, env={"COMMIT_WINDOW": "0.3"}) as (server, http):
        room = await create_room(http)
        user = await create_user(http)
        async with open_socket(server, room["id"], user["id"]) as ws:
            for i in range(5):
                await ws.send(f'{{"content": "close together {i}"}}')
                await asyncio.sleep(0.02)
            received = await receive_messages(ws, 5)
        assert [message["content"] for message in received] == [
            f"close together {i}" for i in range(5)
        ]
        scraped = (await http.get("/metrics")).text
        assert metric(scraped, "quartchat_messages_stored_total") == 5
        # The first alone (nothing came before it), the others sharing commits.
        assert metric(scraped, "quartchat_commits_total") < 5


async def test_process_and_runtime_metrics_are_this_process(tmp_path: Path) -> None:
    async with served(tmp_path) as (server, http):
        before = (await http.get("/metrics")).text
        assert metric(before, "process_cpu_seconds_total") > 0
        assert metric(before, "process_resident_memory_bytes") > 10_000_000
        assert metric(before, "process_max_fds") > 0
        assert metric(before, 'python_gc_collections_total{generation="0"}') >= 0
        assert 'python_info{implementation="CPython"' in before
        room = await create_room(http)
        users = [await create_user(http) for _ in range(10)]
        async with open_sockets([(server, room["id"], user["id"]) for user in users]):
            during = (await http.get("/metrics")).text
        # Each socket is a file descriptor of the server's own process.
        assert metric(during, "process_open_fds") >= metric(before, "process_open_fds") + 10
