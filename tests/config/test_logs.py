"""Request ids on every log line (the access log's too); every line on stdout, in the
text or the JSON format; each record on one line whatever a client sent; no message
content in the log, even at DEBUG."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from quartchat.config.logs import (
    FORMAT,
    JsonLineFormatter,
    OneLineFormatter,
    RequestIdFilter,
    request_id,
)
from tests.support import (
    RunningServer,
    create_postgres_database,
    create_room,
    create_user,
    drop_postgres_database,
    open_socket,
    receive_messages,
    receive_type,
    start_server,
    wait_until_healthy,
)


async def test_request_id_is_echoed_or_made(http: httpx.AsyncClient) -> None:
    echoed = await http.get("/health", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    made = await http.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    hostile = await http.get("/health", headers={"X-Request-ID": "bad id; " + "x" * 80})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])


def test_log_lines_carry_the_request_id() -> None:
    token = request_id.set("trace-42")
    try:
        record = logging.LogRecord("quartchat", logging.WARNING, __file__, 1, "boom", None, None)
        assert RequestIdFilter().filter(record)
        line = logging.Formatter(FORMAT).format(record)
    finally:
        request_id.reset(token)
    assert "[trace-42] boom" in line


def test_a_record_stays_on_its_line_whatever_it_quotes() -> None:
    formatter = OneLineFormatter(FORMAT)
    forged = "x\n2026-01-01 00:00:00,000 ERROR quartchat [-] FORGED\r\x1b[2J\x85\u2028"
    try:
        raise ValueError(f"bad id {forged}")
    except ValueError:
        record = logging.LogRecord(
            "quartchat", logging.ERROR, __file__, 1, "no room %s", (forged,), sys.exc_info()
        )
    record.request_id = "-"
    text = formatter.format(record)
    first, *rest = text.split("\n")
    assert first.endswith(
        "no room x\\n2026-01-01 00:00:00,000 ERROR quartchat [-] FORGED\\r\\x1b[2J\\x85\\u2028"
    )
    assert rest and all(line.startswith("    ") for line in rest)  # the traceback, indented
    assert len(text.splitlines()) == len(text.split("\n"))  # no other line breaks at all
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.server
def test_a_client_cannot_forge_access_log_lines(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        forged = "2026-01-01 00:00:00 FORGED"
        path = f"/rooms/x%0A{forged.replace(' ', '%20')}%0D%1B%C2%85"
        head = (
            f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"User-Agent: agent\x85FORGED-AGENT\tend\r\nReferer: ref\x9bFORGED-REF\r\n\r\n"
        )
        assert raw_request(server.port, head).startswith(b"HTTP/1.1 404")
        deadline = time.monotonic() + 15
        while "FORGED-AGENT" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    lines = server.log().splitlines()  # breaks at \r, \x85 and \u2028 too
    [access] = [line for line in lines if "FORGED" in line]
    assert "x\\n2026-01-01 00:00:00 FORGED\\r\\x1b\\x85" in access
    assert "agent\\x85FORGED-AGENT\\tend" in access and "ref\\x9bFORGED-REF" in access


@pytest.mark.service
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_message_content_is_not_logged_even_at_debug(tmp_path: Path, database: str) -> None:
    env = {"LOG_LEVEL": "debug"}  # lower case: docs/configuration.md promises any case
    if database == "postgres":
        env["DATABASE_URL"] = await create_postgres_database()
    server = start_server(tmp_path, env=env)
    try:
        secrets = [f"secret-{uuid.uuid4().hex}" for _ in range(3)]
        async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
            room, user = await create_room(http), await create_user(http)
            async with open_socket(server, room["id"], user["id"]) as ws:
                await ws.send(json.dumps({"content": secrets[0]}))
                await ws.send(json.dumps({"content": secrets[1], "id": str(uuid.uuid4())}))
                await receive_messages(ws, 2)
            posted = await http.post(
                f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": secrets[2]}
            )
            assert posted.status_code == 201
            history = (await http.get(f"/rooms/{room['id']}/messages")).json()
            assert [message["content"] for message in history] == secrets
    finally:
        server.stop()
        if database == "postgres":
            await drop_postgres_database(env["DATABASE_URL"])
    log = server.log()
    assert "DEBUG quartchat.storage.store" in log  # the level took effect
    for secret in secrets:
        assert secret not in log


def test_a_json_record_is_one_ascii_line_with_its_fields() -> None:
    formatter = JsonLineFormatter()
    forged = 'x\n{"level": "ERROR"}\r\x85\u2028é'
    record = logging.LogRecord(
        "quartchat.closes", logging.INFO, __file__, 1, "no %s", (forged,), None
    )
    record.request_id = "trace-7"
    record.room_id = forged
    record.close_code = 4404
    line = formatter.format(record)
    assert line.isascii() and len(line.splitlines()) == 1
    fields = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields.pop("time"))
    assert fields == {
        "level": "INFO",
        "logger": "quartchat.closes",
        "message": 'no x\\n{"level": "ERROR"}\\r\\x85\\u2028é',  # escaped as in the text format
        "request_id": "trace-7",
        "room_id": 'x\\n{"level": "ERROR"}\\r\\x85\\u2028é',
        "close_code": 4404,
    }


def start_apart(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """`quartchat serve` with its stdout and its stderr in two files; its port."""
    with (tmp_path / "out.log").open("wb") as out, (tmp_path / "err.log").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartchat", "serve"],
            cwd=tmp_path,
            env={
                **os.environ,
                "PORT": "0",
                "HOST": "127.0.0.1",
                "DATABASE_URL": f"sqlite://{tmp_path / 'chat.sqlite3'}",
                **env,
            },
            stdout=out,
            stderr=err,
        )
    server = RunningServer(process, 0, tmp_path / "out.log")
    wait_until_healthy(server)
    return process, server.port


@pytest.mark.server
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_every_line_is_on_stdout_with_its_request_id(tmp_path: Path, log_format: str) -> None:
    process, port = start_apart(tmp_path, {"LOG_FORMAT": log_format})
    server = RunningServer(process, port, tmp_path / "out.log")
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
            assert (await http.get("/health", headers={"X-Request-ID": "trace-42"})).is_success
            user = await create_user(http)
            room = await create_room(http)
            assert (
                await http.get("/rooms/missing", headers={"X-Request-ID": "miss-1"})
            ).status_code == 404
            headers = {"X-Request-ID": "sock-1"}
            async with open_socket(
                server, room["id"], user["id"], additional_headers=headers
            ) as ws:
                await ws.send('{"type": "ping"}')
                await receive_type(ws, "pong")
    finally:
        assert server.stop() == 0
    assert (tmp_path / "err.log").read_text() == ""
    out = server.log()
    assert "startup: database" in out and "shutdown: database" in out
    if log_format == "text":
        assert re.search(
            r' INFO hypercorn\.access \[trace-42\] \S+ - - \[[^]]+\] "GET /health 1\.1" 200 ', out
        )
        assert " INFO hypercorn.access [miss-1] " in out
        assert re.search(
            rf'hypercorn\.access \[sock-1\] .*"GET /ws/{room["id"]}/{user["id"]} 1\.1" 101', out
        )
        return
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line
    access = {line["request_id"]: line for line in lines if line["logger"] == "hypercorn.access"}
    assert access["trace-42"]["status"] == 200 and access["trace-42"]["path"] == "/health"
    assert access["miss-1"]["status"] == 404 and access["miss-1"]["method"] == "GET"
    socket_line = access["sock-1"]
    assert socket_line["status"] == 101
    assert (socket_line["room_id"], socket_line["user_id"]) == (room["id"], user["id"])
    assert socket_line["client"] == "127.0.0.1" and socket_line["duration_ms"] >= 0
    assert any(line["message"].startswith("Running on http://127.0.0.1:") for line in lines)


@pytest.mark.server
async def test_a_client_cannot_forge_json_lines(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"LOG_FORMAT": "json"})
    try:
        path = "/rooms/x%0A%7B%22level%22%3A%22ERROR%22%7D%E2%80%A8%C2%85"
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x85b\r\n\r\n".encode("latin1")
        assert raw_request(server.port, head).startswith(b"HTTP/1.1 404")
        deadline = time.monotonic() + 15
        while "/rooms/x" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    text = server.log()
    assert text.isascii()
    lines = text.splitlines()  # breaks at \x85 and \u2028 too: none may be left raw
    [access] = [json.loads(line) for line in lines if "/rooms/x" in line]
    assert access["path"] == '/rooms/x\\n{"level":"ERROR"}\\u2028\\x85'
    assert access["level"] == "INFO" and access["status"] == 404
