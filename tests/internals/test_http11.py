"""HTTP/1.1 only: HTTP/2 by prior knowledge, by `Upgrade: h2c` or by ALPN never starts.

Unit tests drive `HTTP11Protocol` with fakes for the app, the task group and the TCP
server's send (as Hypercorn tests its protocols); the rest send raw bytes to a real
`quartchat serve`, the way an HTTP/2 client would."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import h2.config
import h2.connection
import h11
import httpx
import pytest
from hypercorn import protocol
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError, H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.typing import ConnectionState

from quartchat.config.settings import Settings
from quartchat.internals import frameguard, http11
from quartchat.internals.http11 import HTTP11Protocol
from tests.support import (
    PROJECT_ROOT,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    start_server,
    wait_for_port,
)

SETTINGS_FRAME = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # an empty SETTINGS frame (RFC 9113 6.5)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SETTINGS_FRAME
H2C_UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
)


def fake_protocol(cls: type[H11Protocol] = HTTP11Protocol) -> H11Protocol:
    task_group = AsyncMock()
    task_group.spawn_app.return_value = AsyncMock()
    return cls(
        AsyncMock(),
        Config(),
        WorkerContext(None),
        task_group,
        ConnectionState({}),
        False,
        ("127.0.0.1", 5000),
        ("127.0.0.1", 8000),
        AsyncMock(),
    )


def sent_bytes(fake: H11Protocol) -> bytes:
    send = fake.send
    assert isinstance(send, AsyncMock)
    return b"".join(
        call.args[0].data for call in send.call_args_list if isinstance(call.args[0], RawData)
    )


def closed(fake: H11Protocol) -> bool:
    send = fake.send
    assert isinstance(send, AsyncMock)
    return any(isinstance(call.args[0], Closed) for call in send.call_args_list)


async def test_prior_knowledge_is_answered_400_in_http11_and_closed() -> None:
    fake = fake_protocol()
    await fake.handle(RawData(PREFACE))
    head, _, body = sent_bytes(fake).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head
    assert json.loads(body)["code"] == "INVALID_REQUEST"
    assert closed(fake)
    assert fake.stream is None  # nothing reached the app
    # What the client sends after it is dropped, not parsed (nor answered again).
    await fake.handle(RawData(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"))
    await fake.handle(Closed())
    assert sent_bytes(fake).count(b"HTTP/1.1 400") == 1


async def test_upstream_protocol_switches_to_http2_on_the_same_bytes() -> None:
    # What HTTP11Protocol replaces: if this stops raising, re-read Hypercorn's
    # H11Protocol._check_protocol and ProtocolWrapper.handle.
    with pytest.raises(H2ProtocolAssumedError):
        await fake_protocol(H11Protocol).handle(RawData(PREFACE))
    with pytest.raises(H2CProtocolRequiredError):
        upgrade = H2C_UPGRADE.format(path="/health").encode()
        await fake_protocol(H11Protocol).handle(RawData(upgrade))


async def test_h2c_upgrade_is_served_as_plain_http11() -> None:
    fake = fake_protocol()
    # h11 pauses the connection after a request that offers an upgrade, until the
    # response (which the fake app never sends) says whether it was taken.
    handling = asyncio.create_task(
        fake.handle(RawData(H2C_UPGRADE.format(path="/health").encode()))
    )
    try:
        async with asyncio.timeout(5):
            while fake.stream is None:  # noqa: ASYNC110 (set by Hypercorn's code)
                await asyncio.sleep(0.01)
    finally:
        handling.cancel()
    assert isinstance(fake.stream, HTTPStream)  # handed to the app as an HTTP/1.1 request
    assert b"101" not in sent_bytes(fake)
    assert not closed(fake)


def test_install_builds_every_connection_as_http11(monkeypatch: pytest.MonkeyPatch) -> None:
    # Restored after the test, whatever install sets.
    monkeypatch.setattr(protocol, "H11Protocol", H11Protocol)
    monkeypatch.setattr(protocol, "H2Protocol", H2Protocol)
    monkeypatch.setattr(Config, "alpn_protocols", Config.alpn_protocols)
    assert http11.install()
    assert http11.install()  # twice is harmless
    for alpn in ("h2", "http/1.1"):
        wrapper = ProtocolWrapper(
            AsyncMock(),
            Config(),
            WorkerContext(None),
            AsyncMock(),
            ConnectionState({}),
            True,
            None,
            None,
            AsyncMock(),
            alpn,
        )
        assert type(wrapper.protocol) is HTTP11Protocol
    assert Config().alpn_protocols == ["http/1.1"]


def test_install_refuses_an_unknown_hypercorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "H11Protocol", type("H11Protocol", (), {}))
    monkeypatch.setattr(protocol, "H2Protocol", H2Protocol)
    assert not http11.install()
    assert getattr(protocol, "H2Protocol") is H2Protocol  # noqa: B009 (not re-exported)


def test_the_frame_guard_is_reported_off_while_http2_stays_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(protocol, "H11Protocol", type("H11Protocol", (), {}))
    monkeypatch.setattr(protocol, "H2Protocol", H2Protocol)
    for module, name in ((protocol.h11, "WSStream"), (protocol.ws_stream, "PerMessageDeflate")):
        monkeypatch.setattr(module, name, getattr(module, name))
    assert not frameguard.install(Settings())


# The upstream code http11.py replaces, as it was when it was written (Hypercorn 0.18.0):
# sha256 of each function's source, first 16 digits.
UPSTREAM = {
    H11Protocol._check_protocol: "f95f6b38f43c62aa",
    ProtocolWrapper.__init__: "df25e181b9e2e64d",  # builds by the names install replaces
    ProtocolWrapper.handle: "b03e2962872c85e8",  # switches to HTTP/2 on the two errors
}


@pytest.mark.parametrize("function", UPSTREAM, ids=lambda function: function.__qualname__)
def test_upstream_is_what_http11_py_was_written_against(function: Any) -> None:
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert digest == UPSTREAM[function], (
        f"{function.__module__}.{function.__qualname__} changed upstream: re-read it against "
        "quartchat/internals/http11.py (which HTTP/2 paths does it open now?), then update "
        "this fingerprint"
    )


def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send `data` on a fresh connection; everything the server sends until it closes
    the connection (or `timeout` passes with nothing more)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received + b"<still open>"
        except ConnectionResetError:
            return received + b"<reset>"
        return received


def assert_refused_in_http11(answer: bytes) -> None:
    # An HTTP/2 server's first bytes are its SETTINGS frame: type 4 at offset 3.
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    body = answer.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["code"] == "INVALID_REQUEST"  # and then the connection closed


async def test_http2_prior_knowledge_is_refused(server: RunningServer) -> None:
    answer = await asyncio.to_thread(exchange, server.port, PREFACE)
    assert_refused_in_http11(answer)


async def test_rfc8441_websocket_over_http2_is_refused(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    # An HTTP/2 client's extended CONNECT (RFC 8441) to a real room, right behind the
    # preface: it never reaches the app, for no HTTP/2 connection ever starts.
    room, user = await create_room(http), await create_user(http)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(
        1,
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", f"/ws/{room['id']}/{user['id']}"),
            (":authority", f"127.0.0.1:{server.port}"),
            ("sec-websocket-version", "13"),
        ],
    )
    answer = await asyncio.to_thread(exchange, server.port, client.data_to_send())
    assert_refused_in_http11(answer)
    presence = await http.get(f"/rooms/{room['id']}/presence")
    assert presence.json() == []


async def test_h2c_upgrade_is_answered_in_http11(server: RunningServer) -> None:
    answer = await asyncio.to_thread(
        exchange, server.port, H2C_UPGRADE.format(path="/health").encode(), 2
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]  # not 101: no upgrade
    connection = h11.Connection(h11.CLIENT)
    connection.receive_data(answer.removesuffix(b"<still open>"))
    response = connection.next_event()
    assert isinstance(response, h11.Response), answer[:200]
    assert response.http_version == b"1.1"
    body = connection.next_event()
    assert isinstance(body, h11.Data)
    assert json.loads(body.data)["status"] == "ok"
    assert answer.endswith(b"<still open>")  # an HTTP/1.1 keep-alive connection


async def test_websockets_still_work_after_http2_was_refused(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    await asyncio.to_thread(exchange, server.port, PREFACE)
    room, user = await create_room(http), await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send('{"type": "ping"}')
        await receive_type(ws, "pong", timeout=10)


def tls_exchange(port: int, cafile: Path, data: bytes) -> tuple[str | None, bytes]:
    """Over TLS offering h2 and http/1.1 by ALPN: the protocol the server picked, and
    everything it sends in answer to `data` until it closes (or stays silent 5 s)."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_alpn_protocols(["h2", "http/1.1"])
    deadline = time.monotonic() + 30
    while True:  # until the server listens
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the TLS server never listened"
            time.sleep(0.05)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(data)
        received = b""
        try:
            while chunk := tls.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return tls.selected_alpn_protocol(), received


@pytest.mark.server
@pytest.mark.parametrize("listed", [False, True], ids=["default-alpn", "h2-listed-in-toml"])
async def test_tls_never_serves_http2(tmp_path: Path, listed: bool) -> None:
    # Not how quartchat is deployed (TLS ends at the edge), but a hypercorn.toml may name
    # a certificate: ALPN then offers http/1.1 only, and a toml that lists h2 gets the 400.
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    settings = (PROJECT_ROOT / "hypercorn.toml").read_text()
    settings += f'certfile = "{tmp_path / "cert.pem"}"\nkeyfile = "{tmp_path / "key.pem"}"\n'
    if listed:
        settings += 'alpn_protocols = ["h2", "http/1.1"]\n'
    (tmp_path / "hypercorn.toml").write_text(settings)
    config = ["--config", str(tmp_path / "hypercorn.toml")]
    server = start_server(tmp_path, args=config, wait=False)
    await asyncio.to_thread(wait_for_port, server)  # TLS only: no plain /health to ask
    try:
        if listed:
            picked, answer = await asyncio.to_thread(
                tls_exchange, server.port, tmp_path / "cert.pem", PREFACE
            )
            assert picked == "h2"
            assert_refused_in_http11(answer)
        else:
            request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            picked, answer = await asyncio.to_thread(
                tls_exchange, server.port, tmp_path / "cert.pem", request
            )
            assert picked == "http/1.1"
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    finally:
        server.stop()
