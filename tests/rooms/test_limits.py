"""Token buckets: frames per socket, messages per user, creations per address."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from quartchat.config.settings import Settings
from quartchat.rooms.limits import Budgets, PacedReads
from quartchat.wire.budget import FrameBudget
from tests.support import (
    create_room,
    create_user,
    open_socket,
    receive_messages,
    receive_type,
    served,
)
from tests.support.timing import within


def test_burst_then_rate() -> None:
    budget = FrameBudget(rate=2, burst=3, max_strikes=5, now=0.0)
    assert [budget.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take(0.0) == pytest.approx(0.5)  # one token back in half a second
    assert budget.take(0.5) == 0.0
    assert budget.take(0.5) > 0


def test_strikes_reset_only_when_the_client_slows_down() -> None:
    budget = FrameBudget(rate=10, burst=2, max_strikes=3, now=0.0)
    budget.take(0.0)
    budget.take(0.0)
    for _ in range(3):
        assert budget.take(0.0) > 0
    assert budget.exhausted
    budget.take(10.0)  # quiet long enough for a full bucket
    assert budget.strikes == 0 and not budget.exhausted


def test_budgets_are_separate_and_forgotten_when_idle() -> None:
    budgets = Budgets(rate=1, burst=2)
    assert budgets.take("a", 0.0) == 0.0
    assert budgets.take("a", 0.0) == 0.0
    assert budgets.take("a", 0.0) == pytest.approx(1.0)
    assert budgets.take("b", 0.0) == 0.0  # another address has its own bucket
    for i in range(1000):
        budgets.take(f"x{i}", 100.0)
    assert "a" not in budgets._budgets  # idle long enough to be full: dropped


def test_budgets_stay_bounded_under_key_churn() -> None:
    # One client cycling through /64s or forwarded addresses faster than buckets refill.
    budgets = Budgets(rate=1, burst=100, max_keys=50)
    budgets.take("steady", 0.0)
    for i in range(10_000):
        budgets.take(f"churn{i}", 1.0)
        budgets.take("steady", 1.0)  # a key in use is never the one forgotten
    assert len(budgets._budgets) == 50
    assert "churn0" not in budgets._budgets
    assert budgets.take("steady", 1.0) > 0  # still spent: its bucket was kept, not renewed


def test_a_reservation_may_go_into_debt_once_and_is_refunded() -> None:
    budget = FrameBudget(rate=100, burst=150, max_strikes=1, now=0.0)
    assert budget.reserve(0.0, 100) == 0.0
    assert budget.reserve(0.0, 100) == 0.0  # 50 left: set aside, 50 owed
    assert budget.reserve(0.0, 100) == pytest.approx(0.5)  # until the debt is paid
    budget.refund(95)  # the second page returned 5 items
    assert budget.reserve(0.0, 100) == 0.0


async def test_paced_reads_wait_past_the_budget_and_cost_what_they_return() -> None:
    reads = PacedReads(Budgets(rate=1000, burst=300), at_once=2)
    in_flight = most_in_flight = 0

    async def read(size: int) -> list[int]:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return list(range(size))

    started = time.monotonic()
    small = await asyncio.gather(*(reads.read("a", 100, lambda: read(10)) for _ in range(20)))
    assert [len(page) for page in small] == [10] * 20
    # 200 items, inside the burst: only the waits for what pages set aside and gave back.
    # Charged their whole 100 instead, the 2,000 items would take 1.7 s past the burst.
    within(time.monotonic() - started, 1.2, "20 small reads inside the burst")
    assert most_in_flight == 2  # never more pages at once than `at_once`, whoever asks
    started = time.monotonic()
    await asyncio.gather(*(reads.read("a", 100, lambda: read(100)) for _ in range(10)))
    assert time.monotonic() - started >= 0.5  # 1000 items, at most 300 in the bucket
    started = time.monotonic()
    await reads.read("b", 100, lambda: read(100))  # another address: its own budget
    within(time.monotonic() - started, 0.45, "another address's read")


@pytest.mark.server
async def test_creations_are_limited_per_address(tmp_path: Path) -> None:
    env = {"CREATIONS_PER_MINUTE": "1", "CREATIONS_BURST": "3"}
    async with served(tmp_path, env=env) as (_, http):
        assert (await http.post("/rooms", json={"name": "r"})).status_code == 201
        for i in range(2):
            assert (await http.post("/users", json={"username": f"u{i}"})).status_code == 201
        refused = await http.post("/users", json={"username": "one too many"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await http.post("/rooms", json={"name": "too"})).status_code == 429
        assert (await http.get("/users")).status_code == 200  # reads are not limited


@pytest.mark.server
async def test_an_ipv6_clients_creations_count_against_its_whole_64(tmp_path: Path) -> None:
    # Addresses as a trusted proxy names them: one IPv6 subscriber may pick any address
    # of its /64, so they share one budget; IPv4 addresses are each their own.
    limits = {"CREATIONS_PER_MINUTE": "1", "CREATIONS_BURST": "2"}
    env = {"FORWARDED_ALLOW_IPS": "127.0.0.1", **limits}
    async with served(tmp_path, env=env, timeout=30) as (_, http):

        async def create_from(client: str) -> int:
            headers = {"X-Real-IP": client}
            response = await http.post("/users", json={"username": "v6"}, headers=headers)
            return response.status_code

        same_64 = ["2001:db8::1", "2001:db8::2", "2001:db8::ffff:3"]
        assert [await create_from(client) for client in same_64] == [201, 201, 429]
        assert await create_from("2001:db8:0:1::1") == 201  # the next /64
        ipv4 = ["10.0.0.1", "10.0.0.1", "10.0.0.2"]
        assert [await create_from(client) for client in ipv4] == [201, 201, 201]


@pytest.mark.server
async def test_an_ipv6_clients_list_reads_count_against_its_whole_64(tmp_path: Path) -> None:
    limits = {"REST_READS_PER_MINUTE": "1", "REST_READS_BURST": "2"}
    env = {"FORWARDED_ALLOW_IPS": "127.0.0.1", **limits}
    async with served(tmp_path, env=env, timeout=30) as (_, http):
        statuses = [
            (await http.get("/users", headers={"X-Real-IP": client})).status_code
            for client in ("2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8:0:1::1")
        ]
        assert statuses == [200, 200, 429, 200]


@pytest.mark.server
async def test_an_ipv6_clients_sockets_count_against_its_whole_64(tmp_path: Path) -> None:
    env = {"FORWARDED_ALLOW_IPS": "127.0.0.1", "MAX_SOCKETS_PER_IP": "2"}
    async with served(tmp_path, env=env, timeout=30) as (server, http):
        room, user = await create_room(http), await create_user(http)
        url = f"{server.ws_url}/ws/{room['id']}/{user['id']}"
        sockets = [
            await connect(url, additional_headers={"X-Real-IP": f"2001:db8::{i}"}, open_timeout=30)
            for i in (1, 2, 3)
        ]
        try:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(sockets[2].recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
            other_64 = {"X-Real-IP": "2001:db8:0:1::1"}
            async with connect(url, additional_headers=other_64, open_timeout=30) as ws:
                await ws.send(json.dumps({"type": "ping"}))
                assert (await receive_type(ws, "pong"))["type"] == "pong"
        finally:
            for ws in sockets:
                await ws.close()


@pytest.mark.server
async def test_old_setting_names_still_limit_creations(tmp_path: Path) -> None:
    old_names = {"REST_WRITES_PER_MINUTE": "1", "REST_WRITES_BURST": "1"}
    env = {"CREATIONS_PER_MINUTE": "", "CREATIONS_BURST": "", **old_names}
    async with served(tmp_path, env=env) as (_, http):
        assert (await http.post("/users", json={"username": "a"})).status_code == 201
        assert (await http.post("/users", json={"username": "b"})).status_code == 429


@pytest.mark.server
async def test_default_limits_let_a_classroom_behind_one_address_create_40_users(
    tmp_path: Path,
) -> None:
    env = {"CREATIONS_PER_MINUTE": "", "CREATIONS_BURST": ""}
    async with served(tmp_path, env=env, timeout=30) as (_, http):
        started = time.monotonic()
        created = await asyncio.gather(
            *(http.post("/users", json={"username": f"pupil {i}"}) for i in range(40))
        )
        assert [response.status_code for response in created] == [201] * 40
        # ...but a script creating users by the thousand is stopped: past the burst
        # of 100, 5 a second (300 a minute) get through.
        statuses = [
            (await http.post("/users", json={"username": f"bot {i}"})).status_code
            for i in range(300)
        ]
        elapsed = time.monotonic() - started
        assert 429 in statuses
        assert 40 + statuses.count(201) <= 100 + 5 * elapsed + 1


@pytest.mark.server
async def test_one_users_messages_share_one_budget_across_socket_and_rest(
    tmp_path: Path,
) -> None:
    limits = {"RATE_LIMIT_PER_SECOND": "0.01", "RATE_LIMIT_BURST": "4", "RATE_LIMIT_STRIKES": "50"}
    async with served(tmp_path, env=limits) as (server, http):
        room = await create_room(http)
        flooder, neighbour = await create_user(http), await create_user(http)
        path = f"/rooms/{room['id']}/messages"
        async with open_socket(server, room["id"], flooder["id"]) as ws:
            for i in range(2):  # half the burst over REST...
                posted = await http.post(path, json={"user_id": flooder["id"], "content": f"r{i}"})
                assert posted.status_code == 201
            for i in range(2):  # ...the other half on the socket
                await ws.send(json.dumps({"content": f"s{i}"}))
            await receive_messages(ws, 4)
            over_id = str(uuid.uuid4())
            await ws.send(json.dumps({"content": "over", "id": over_id}))
            refused = await receive_type(ws, "error")
            assert refused["code"] == "RATE_LIMITED" and refused["retry_after"] > 0
            assert refused["id"] == over_id
            over_rest = await http.post(path, json={"user_id": flooder["id"], "content": "x"})
            assert over_rest.status_code == 429
            assert over_rest.json()["code"] == "RATE_LIMITED"
            assert int(over_rest.headers["retry-after"]) >= 1
            # A fresh socket of the same user has a full frame budget, not more messages.
            async with open_socket(server, room["id"], flooder["id"]) as second:
                await second.send(json.dumps({"content": "from another socket"}))
                assert (await receive_type(second, "error"))["code"] == "RATE_LIMITED"
            # Another user at the same address is not affected.
            for i in range(4):
                ok = await http.post(path, json={"user_id": neighbour["id"], "content": f"n{i}"})
                assert ok.status_code == 201
        stored = [m["content"] for m in (await http.get(path)).json()]
        assert stored == ["r0", "r1", "s0", "s1", "n0", "n1", "n2", "n3"]


def test_creation_limits_keep_their_former_names() -> None:
    assert Settings.from_env({}).creations_burst == 100
    assert Settings.from_env({"REST_WRITES_BURST": "7"}).creations_burst == 7
    both = {"REST_WRITES_PER_MINUTE": "7", "CREATIONS_PER_MINUTE": "9"}
    assert Settings.from_env(both).creations_per_minute == 9
