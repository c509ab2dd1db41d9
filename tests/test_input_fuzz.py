"""Property tests against a live server: generated ids, timestamps and bodies, over REST
and on the socket URL, are answered with a 4xx or a success, never a server error."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support import RunningServer

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every character but lone surrogates, which no client can put into a UTF-8 URL or body
# (escaped in JSON, they are generated below).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
path_ids = (
    any_text.filter(bool).map(lambda text: quote(text, safe=""))
    | st.binary(min_size=1, max_size=40).map(lambda raw: "".join(f"%{b:02X}" for b in raw))
    | st.integers(60, 200).map(lambda size: "x" * size)
    | st.sampled_from(["x%00", "x%0A", "%ED%A0%80", "..", "%2E%2E"])
)
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
timestamps = (
    st.datetimes(timezones=st.none() | offsets).map(lambda moment: moment.isoformat())
    | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "", " "])
    | any_text
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | any_text
    | st.sampled_from(["\\u0000", "\\ud800", "\\u202e", "\\u200b"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "name", "username", "content", "user_id"]), children
        )
    ),
    max_leaves=12,
)
bodies = (
    json_values.map(json.dumps)
    | st.fixed_dictionaries(
        {},
        optional={
            "id": path_ids | json_values,
            "name": any_text | json_values,
            "username": any_text | json_values,
            "user_id": path_ids | json_values,
            "content": any_text | json_values,
        },
    )
    .map(json.dumps)
    # json.dumps escapes what it cannot write raw; undo it for the text escapes above
    .map(lambda text: text.replace("\\\\u", "\\u"))
    | st.integers(500, 50_000).map(lambda depth: "[" * depth + "]" * depth)
    | st.binary(max_size=64).map(lambda raw: raw.decode("latin1"))
)


@pytest.fixture(scope="module", name="client")
def _client(server: RunningServer) -> Any:
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module", name="known")
def _known(client: httpx.Client) -> dict[str, str]:
    room = client.post("/rooms", json={"name": "Fuzzed"}).json()
    user = client.post("/users", json={"username": "Fuzzer"}).json()
    return {"room": room["id"], "user": user["id"]}


def assert_not_a_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.url, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "detail"}


@SETTINGS
@given(room_id=path_ids, user_id=path_ids, since=timestamps, after=any_text)
def test_generated_ids_and_timestamps_never_get_a_server_error(
    client: httpx.Client, room_id: str, user_id: str, since: str, after: str
) -> None:
    assert_not_a_server_error(client.get(f"/rooms/{room_id}"))
    assert_not_a_server_error(client.get(f"/users/{user_id}"))
    assert_not_a_server_error(client.get(f"/rooms/{room_id}/presence"))
    assert_not_a_server_error(client.get(f"/rooms/{room_id}/messages", params={"since": since}))
    assert_not_a_server_error(client.get(f"/rooms/{room_id}/messages", params={"after": after}))


@SETTINGS
@given(since=timestamps, after=any_text)
def test_generated_replay_points_of_a_known_room_never_get_a_server_error(
    client: httpx.Client, known: dict[str, str], since: str, after: str
) -> None:
    url = f"/rooms/{known['room']}/messages"
    assert_not_a_server_error(client.get(url, params={"since": since}))
    assert_not_a_server_error(client.get(url, params={"after": after}))


@SETTINGS
@given(body=bodies)
def test_generated_bodies_never_get_a_server_error(
    client: httpx.Client, known: dict[str, str], body: str
) -> None:
    headers = {"content-type": "application/json"}
    for url in ("/users", "/rooms", f"/rooms/{known['room']}/messages"):
        assert_not_a_server_error(client.post(url, content=body.encode(), headers=headers))


@settings(max_examples=25, deadline=None)
@given(room_id=path_ids, since=timestamps)
def test_generated_socket_urls_never_get_a_server_error(
    server: RunningServer, known: dict[str, str], room_id: str, since: str
) -> None:
    for path in (
        f"/ws/{room_id}/{known['user']}",
        f"/ws/{known['room']}/{room_id}",
        f"/ws/{known['room']}/{known['user']}",
    ):
        query = str(httpx.QueryParams({"since": since}))
        try:
            with connect(f"{server.ws_url}{path}?{query}", open_timeout=15) as ws:
                ws.recv(timeout=0.2)  # a close, an INVALID_SINCE error, or nothing yet
        except InvalidStatus as refused:
            assert refused.response.status_code < 500, path
        except ConnectionClosed as closed:
            assert closed.rcvd is None or closed.rcvd.code != 1011, path
        except TimeoutError:
            pass
