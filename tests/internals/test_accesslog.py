"""The access log: Hypercorn's lines, with fields computed only when the format uses them."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from hypercorn.logging import AccessLogAtoms

from quartchat.internals.accesslog import LazyAccessLogAtoms
from tests.support import create_room, create_user, open_socket, served

# Any: Hypercorn types scopes as TypedDicts
HTTP_SCOPE: Any = {
    "type": "http",
    "http_version": "1.1",
    "method": "POST",
    "scheme": "https",
    "path": "/rooms/lobby/messages",
    "query_string": b"since=2026-11-26T04:00:00Z",
    "client": ("203.0.113.7", 51234),
    "headers": [
        (b"host", b"chat.example"),
        (b"user-agent", b"Mozilla/5.0 (X11)"),
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-for", b"198.51.100.2"),
    ],
}
RESPONSE: Any = {
    "status": 201,
    "headers": [(b"content-length", b"187"), (b"x-request-id", b"abc")],
}
WEBSOCKET_SCOPE: Any = {
    "type": "websocket",
    "scheme": "wss",
    "path": "/ws/lobby/u1",
    "query_string": b"",
    "client": ("::1", 40000, 0, 0),
    "headers": [(b"origin", b"https://chat.example")],
}
PLAIN_ATOMS = "h l r R s st S m U Uq q H b B f a T D L p"
BRACED_ATOMS = "{User-Agent}i {x-forwarded-for}i {missing}i {X-Request-ID}o {missing}o {PATH}e"
ODD_ATOMS = "{no_such_variable}e unknown {odd}x"
ATOMS = f"{PLAIN_ATOMS} {BRACED_ATOMS} {ODD_ATOMS}".split()


@pytest.mark.parametrize(
    ("scope", "response"),
    [(HTTP_SCOPE, RESPONSE), (HTTP_SCOPE, None), (WEBSOCKET_SCOPE, {"status": 418})],
)
def test_every_atom_reads_what_hypercorns_own_reads(scope: Any, response: Any) -> None:
    ours = LazyAccessLogAtoms(scope, response, 0.0123456)
    theirs = AccessLogAtoms(scope, response, 0.0123456)
    for atom in ATOMS:
        assert (atom, ours[atom]) == (atom, theirs[atom])
    # The time is read when the line is written: compared by its shape only.
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", ours["t"])


def test_a_log_call_formats_the_same_line() -> None:
    lines: list[str] = []
    line_format = '%(h)s %(l)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-forwarded-for}i)s'
    ours = LazyAccessLogAtoms(HTTP_SCOPE, RESPONSE, 0.5)
    theirs = AccessLogAtoms(HTTP_SCOPE, RESPONSE, 0.5)
    for atoms in (ours, theirs):
        record = logging.LogRecord("a", logging.INFO, "", 0, line_format, (atoms,), None)
        lines.append(record.getMessage())
    assert lines[0] == lines[1]


@pytest.mark.server
async def test_the_server_logs_each_request_and_socket(tmp_path: Path) -> None:
    async with served(tmp_path) as (server, http):
        room, user = await create_room(http), await create_user(http)
        await http.get(f"/rooms/{room['id']}/messages", headers={"User-Agent": "poller/1"})
        async with open_socket(server, room["id"], user["id"]):
            pass
    log = server.log()
    assert re.search(rf'"GET /rooms/{room["id"]}/messages 1.1" 200 \d+ "-" "poller/1"', log)
    assert re.search(rf'"GET /ws/{room["id"]}/{user["id"]} 1.1" 101 - "-" "Python/', log)


@pytest.mark.server
async def test_access_log_false_leaves_requests_and_sockets_out(tmp_path: Path) -> None:
    async with served(tmp_path, env={"ACCESS_LOG": "false"}) as (server, http):
        room, user = await create_room(http), await create_user(http)
        await http.get(f"/rooms/{room['id']}/messages")
        async with open_socket(server, room["id"], user["id"]):
            pass
    log = server.log()
    assert "startup: sockets" in log  # the application's own lines stay
    assert f"/rooms/{room['id']}/messages" not in log
    assert f"/ws/{room['id']}/{user['id']}" not in log
