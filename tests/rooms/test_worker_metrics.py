"""With `workers > 1`, one scrape of `/metrics` adds up every worker (worker_metrics.py)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
from pathlib import Path

import httpx

from quartchat.rooms.worker_metrics import Gathered, merge
from tests.support import (
    PROJECT_ROOT,
    REDIS_TEST_URL,
    RunningServer,
    create_room,
    create_user,
    metric,
    start_server,
    unique_id,
)

WORKER_ONE = """\
# HELP quartchat_messages_stored_total Messages stored by this process
# TYPE quartchat_messages_stored_total counter
quartchat_messages_stored_total 31.0
# HELP quartchat_messages_stored_created Messages stored by this process
# TYPE quartchat_messages_stored_created gauge
quartchat_messages_stored_created 1700000002.0
# HELP quartchat_open_sockets Sockets open on this process
# TYPE quartchat_open_sockets gauge
quartchat_open_sockets 4.0
# HELP quartchat_fanout_seconds Fan-out
# TYPE quartchat_fanout_seconds histogram
quartchat_fanout_seconds_bucket{le="0.001"} 2.0
quartchat_fanout_seconds_bucket{le="+Inf"} 3.0
quartchat_fanout_seconds_count 3.0
quartchat_fanout_seconds_sum 0.5
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1000.0
"""
WORKER_TWO = """\
# HELP quartchat_messages_stored_total Messages stored by this process
# TYPE quartchat_messages_stored_total counter
quartchat_messages_stored_total 29.0
# HELP quartchat_messages_stored_created Messages stored by this process
# TYPE quartchat_messages_stored_created gauge
quartchat_messages_stored_created 1700000001.0
# HELP quartchat_errors_total Errors
# TYPE quartchat_errors_total counter
quartchat_errors_total{code="ROOM_NOT_FOUND"} 2.0
# HELP quartchat_open_sockets Sockets open on this process
# TYPE quartchat_open_sockets gauge
quartchat_open_sockets 1.0
# HELP quartchat_fanout_seconds Fan-out
# TYPE quartchat_fanout_seconds histogram
quartchat_fanout_seconds_bucket{le="0.001"} 1.0
quartchat_fanout_seconds_bucket{le="+Inf"} 1.0
quartchat_fanout_seconds_count 1.0
quartchat_fanout_seconds_sum 0.25
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2000.0
"""


def test_merge_sums_quartchat_metrics_and_keeps_each_process() -> None:
    from prometheus_client import generate_latest

    text = generate_latest(Gathered(merge({11: WORKER_ONE, 22: WORKER_TWO}))).decode()
    expected = {
        "quartchat_messages_stored_total": 60,
        "quartchat_messages_stored_created": 1700000001,  # the earlier start
        'quartchat_errors_total{code="ROOM_NOT_FOUND"}': 2,
        "quartchat_open_sockets": 5,
        'quartchat_fanout_seconds_bucket{le="0.001"}': 3,
        'quartchat_fanout_seconds_bucket{le="+Inf"}': 4,
        "quartchat_fanout_seconds_count": 4,
        "quartchat_fanout_seconds_sum": 0.75,
        'process_resident_memory_bytes{pid="11"}': 1000,
        'process_resident_memory_bytes{pid="22"}': 2000,
    }
    assert {name: metric(text, name) for name in expected} == expected
    assert "# TYPE quartchat_messages_stored_total counter" in text
    assert "# TYPE quartchat_fanout_seconds histogram" in text


def two_workers(tmp_path: Path, postgres_url: str) -> RunningServer:
    config = tmp_path / "two-workers.toml"
    config.write_text(
        (PROJECT_ROOT / "hypercorn.toml").read_text().replace("workers = 1", "workers = 2")
    )
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": unique_id("mw"),
    }
    return start_server(tmp_path, env=env, args=["--config", str(config)])


async def scrape(server: RunningServer) -> str:
    # A new connection each time, so that the kernel (SO_REUSEPORT) picks a worker.
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as fresh:
        response = await fresh.get("/metrics")
    assert response.status_code == 200
    return response.text


def worker_pids(scraped: str) -> set[int]:
    return {
        int(pid) for pid in re.findall(r'^process_cpu_seconds_total\{pid="(\d+)"\}', scraped, re.M)
    }


async def own_metrics(pid: int) -> str:
    """One worker's own metrics, read from its socket in the folder `quartchat serve`
    made for its workers."""
    (path,) = Path(tempfile.gettempdir()).glob(f"quartchat-metrics-*/{pid}.sock")
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        return (await reader.read()).decode()
    finally:
        writer.close()


async def scrape_with_workers(server: RunningServer, count: int, avoid: int = 0) -> str:
    """A scrape that adds up `count` workers (none of them `avoid`), once they are up."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        scraped = await scrape(server)
        pids = worker_pids(scraped)
        if (
            metric(scraped, "quartchat_workers") == count
            and len(pids) == count
            and avoid not in pids
        ):
            return scraped
        assert asyncio.get_running_loop().time() < deadline, scraped
        await asyncio.sleep(0.1)


async def test_every_scrape_counts_every_worker(tmp_path: Path, postgres_url: str) -> None:
    server = two_workers(tmp_path, postgres_url)
    try:
        await scrape_with_workers(server, 2)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            room = await create_room(http)
            user = await create_user(http)
        for i in range(60):
            async with httpx.AsyncClient(base_url=server.http_url) as fresh:
                posted = await fresh.post(
                    f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": f"{i}"}
                )
                assert posted.status_code == 201
                missing = await fresh.get("/rooms/no-such-room/messages")
                assert missing.status_code == 404
        # What each worker alone counted (its metrics socket, which scrapes read): the
        # requests were spread, so a scrape of one worker alone would miss some.
        alone = [
            metric(await own_metrics(pid), "quartchat_messages_stored_total")
            for pid in worker_pids(await scrape(server))
        ]
        assert sum(alone) == 60 and min(alone) > 0, alone
        for _ in range(8):
            scraped = await scrape(server)
            assert metric(scraped, "quartchat_workers") == 2
            assert metric(scraped, "quartchat_messages_stored_total") == 60
            assert metric(scraped, 'quartchat_errors_total{code="ROOM_NOT_FOUND"}') == 60
            assert metric(scraped, "quartchat_commits_total") == 60  # one at a time
            pids = worker_pids(scraped)
            assert len(pids) == 2
            for pid in pids:
                for name in ("process_resident_memory_bytes", "process_open_fds"):
                    assert metric(scraped, f'{name}{{pid="{pid}"}}') > 0
                assert (
                    metric(scraped, f'python_gc_collections_total{{generation="0",pid="{pid}"}}')
                    >= 0
                )

        # A worker that dies is left out at once, and its replacement is counted.
        dead = min(pids)
        os.kill(dead, signal.SIGKILL)
        scraped = await scrape_with_workers(server, 2, avoid=dead)
        assert metric(scraped, "quartchat_messages_stored_total") < 60  # the dead one's are gone
        assert not list(Path(tempfile.gettempdir()).glob(f"quartchat-metrics-*/{dead}.sock"))
    finally:
        assert server.stop() == 0
