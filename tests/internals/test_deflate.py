"""permessage-deflate bounded before it inflates: `BoundedDeflate` between two real
wsproto connections, and inside `GuardedWSStream` with fakes for the app and the TCP
server (as Hypercorn tests `WSStream`). The same against a real server is in
test_frameguard.py and blueprints/test_ws_closes.py."""

from __future__ import annotations

import hashlib
import inspect
import random
import zlib
from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock

import pytest
import wsproto.extensions
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.protocol import ws_stream
from hypercorn.protocol.events import Data, Request, StreamClosed
from hypercorn.protocol.ws_stream import Handshake, WSStream
from hypercorn.typing import ConnectionState
from wsproto.connection import CLIENT, SERVER, Connection
from wsproto.events import BytesMessage, CloseConnection, Event, Message, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol

from quartchat.internals.deflate import BoundedDeflate, _finishing, _unfinished_character
from quartchat.internals.frameguard import GuardedWSStream

LIMIT = 65536


class InflationSpy:
    """zlib as wsproto.extensions uses it, counting every byte a decompressor inflates."""

    def __init__(self) -> None:
        self.inflated = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)

    def decompressobj(self, wbits: int) -> Any:
        spy = self
        real = zlib.decompressobj(wbits)

        class Counted:
            def decompress(self, data: bytes, max_length: int = 0) -> bytes:
                out = real.decompress(data, max_length)
                spy.inflated += len(out)
                return out

            def flush(self) -> bytes:
                out = real.flush()
                spy.inflated += len(out)
                return out

            @property
            def unconsumed_tail(self) -> bytes:
                return real.unconsumed_tail

        return Counted()


@pytest.fixture(name="spy")
def _spy(monkeypatch: pytest.MonkeyPatch) -> InflationSpy:
    spy = InflationSpy()
    monkeypatch.setattr(wsproto.extensions, "zlib", spy)
    return spy


def pair(
    limit: int = LIMIT, kind: type[BoundedDeflate] = BoundedDeflate
) -> tuple[Connection, Connection, BoundedDeflate]:
    """A client and a server connection that negotiated permessage-deflate."""
    bounded = kind()
    bounded.max_message_size = limit
    assert bounded.accept("permessage-deflate") is not None
    offered = PerMessageDeflate()
    offered.finalize("permessage-deflate")
    return Connection(CLIENT, [offered]), Connection(SERVER, [bounded]), bounded


def deliver(data: bytes, server: Connection, chunk: int = 65536) -> Iterator[Event]:
    """What the server makes of `data`, received `chunk` bytes at a time."""
    for start in range(0, len(data), chunk):
        server.receive_data(data[start : start + chunk])
        yield from server.events()


def received(events: list[Event]) -> list[str | bytes]:
    """Whole messages, joined from their parts."""
    messages: list[str | bytes] = []
    parts: list[Any] = []
    for event in events:
        if isinstance(event, Message):
            parts.append(event.data)
            if event.message_finished:
                joined = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                messages.append(joined)
                parts = []
    return messages


def test_messages_within_the_limit_arrive_unchanged(spy: InflationSpy) -> None:
    client, server, bounded = pair()
    texts = ["hello", "é" * 30000, "x" * LIMIT, "中文" * 100]
    wire = b"".join(client.send(TextMessage(data=text)) for text in texts)
    wire += client.send(BytesMessage(data=bytes(LIMIT)))
    events = list(deliver(wire, server, chunk=1000))
    assert received(events) == [*texts, bytes(LIMIT)]
    assert not bounded.refused
    assert not any(isinstance(event, CloseConnection) for event in events)


def test_a_fragmented_message_with_a_ping_between_its_frames() -> None:
    # RFC 6455 5.4 allows control frames between a message's frames; wsproto 1.3's own
    # permessage-deflate forgets that the message was compressed after one.
    client, server, _ = pair()
    wire = client.send(TextMessage(data="first half ", message_finished=False))
    wire += FrameProtocol(True, []).ping(b"")
    wire += client.send(TextMessage(data="second half", message_finished=True))
    events = list(deliver(wire, server))
    assert received(events) == ["first half second half"]


def test_a_message_past_the_limit_is_inflated_no_further(spy: InflationSpy) -> None:
    client, server, bounded = pair()
    bomb = client.send(TextMessage(data="\0" * (64 * LIMIT)))  # 4 MiB, about 4 KiB deflated
    assert len(bomb) < 8192
    events = list(deliver(bomb, server, chunk=512))
    assert bounded.refused
    assert spy.inflated <= LIMIT + 1  # one byte past the limit says it was over
    assert sum(len(event.data) for event in events if isinstance(event, Message)) <= LIMIT
    assert not any(isinstance(event, CloseConnection) for event in events)
    # Later messages are dropped uninflated; the client's close reply still arrives.
    later = client.send(TextMessage(data="\0" * (64 * LIMIT))) + client.send(
        CloseConnection(code=1000)
    )
    inflated = spy.inflated
    events = list(deliver(later, server))
    assert spy.inflated == inflated
    assert all(event.data == "" for event in events if isinstance(event, Message))
    assert isinstance(events[-1], CloseConnection) and events[-1].code == 1000


def test_a_message_over_the_limit_in_many_frames_is_refused() -> None:
    client, server, bounded = pair()
    parts = [TextMessage(data="y" * 10000, message_finished=False) for _ in range(6)]
    wire = b"".join(client.send(part) for part in parts)
    wire += client.send(TextMessage(data="y" * 10000, message_finished=True))
    events = list(deliver(wire, server))
    assert bounded.refused
    assert not any(isinstance(event, CloseConnection) for event in events)


def test_the_limit_is_per_message() -> None:
    client, server, bounded = pair()
    wire = b"".join(client.send(TextMessage(data="z" * (LIMIT // 2))) for _ in range(10))
    assert len(received(list(deliver(wire, server)))) == 10
    assert not bounded.refused


class Recording(BoundedDeflate):
    finished_with = b""

    def _refuse(self) -> bytes:
        self.finished_with = super()._refuse()
        return self.finished_with


def test_a_refusal_cut_inside_a_character_is_not_an_utf8_error() -> None:
    # Text that deflates poorly, read a few bytes at a time, so that each read inflates
    # a little and the limit falls inside two-, three- and four-byte characters; wsproto
    # must not see broken UTF-8 (it would close 1007 instead of the guard's 1009).
    cut_inside = 0
    for limit in range(1000, 1080):
        rng = random.Random(limit)
        text = "".join(rng.choice("aé中😀\u0800\ud7ff\U00010000\U0010ffff") for _ in range(3000))
        client, server, bounded = pair(limit, Recording)
        events = list(deliver(client.send(TextMessage(data=text)), server, chunk=7))
        assert bounded.refused
        assert not any(isinstance(event, CloseConnection) for event in events), limit
        assert isinstance(bounded, Recording)
        cut_inside += bool(bounded.finished_with)
    assert cut_inside  # the case above did happen


CHARACTERS = ["é", "\u07ff", "\u0800", "中", "\ud7ff", "\ue000", "\U00010000", "😀", "\U0010ffff"]


@pytest.mark.parametrize("character", CHARACTERS)
def test_any_start_of_a_character_is_finished_as_valid_utf8(character: str) -> None:
    encoded = character.encode()
    for cut in range(1, len(encoded)):
        start = encoded[:cut]
        assert _unfinished_character(b"ab" + start) == start
        (start + _finishing(start)).decode()
    assert _unfinished_character(b"ab" + encoded) == b""
    assert _finishing(b"") == b""


def guarded_stream() -> tuple[GuardedWSStream, AsyncMock, AsyncMock]:
    """A GuardedWSStream with fakes for the app and for what it sends (the TCP side)."""
    task_group = AsyncMock()
    app_put = AsyncMock()
    task_group.spawn_app.return_value = app_put
    send = AsyncMock()
    config = Config()
    config.websocket_max_message_size = LIMIT
    stream = GuardedWSStream(
        AsyncMock(), config, WorkerContext(None), task_group, False, None, None, send, 1
    )
    return stream, app_put, send


def sent_close_codes(send: AsyncMock) -> list[int]:
    client = Connection(CLIENT)  # reads the server's frames (unmasked, uncompressed close)
    codes: list[int] = []
    for call in send.call_args_list:
        if isinstance(call.args[0], Data):
            client.receive_data(call.args[0].data)
            codes += [e.code for e in client.events() if isinstance(e, CloseConnection)]
    return codes


async def test_guarded_stream_refuses_a_deflate_bomb_1009_and_inflates_no_more(
    monkeypatch: pytest.MonkeyPatch, spy: InflationSpy
) -> None:
    monkeypatch.setattr(ws_stream, "PerMessageDeflate", BoundedDeflate)  # as install does
    stream, app_put, send = guarded_stream()
    headers = [
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
    ]
    await stream.handle(
        Request(
            stream_id=1,
            headers=headers,
            http_version="1.1",
            method="GET",
            raw_path=b"/ws",
            state=ConnectionState({}),
        )
    )
    await stream.app_send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    assert isinstance(stream.inflater, BoundedDeflate)
    assert stream.inflater.max_message_size == LIMIT
    offered = PerMessageDeflate()
    offered.finalize("permessage-deflate")
    client = Connection(CLIENT, [offered])
    ping = '{"type":"ping"}'
    await stream.handle(Data(stream_id=1, data=client.send(TextMessage(data=ping))))
    app_put.assert_awaited_with({"type": "websocket.receive", "bytes": None, "text": ping})
    bomb = client.send(TextMessage(data="\0" * (256 * LIMIT)))
    for start in range(0, len(bomb), 4096):
        await stream.handle(Data(stream_id=1, data=bomb[start : start + 4096]))
    assert spy.inflated <= 2 * LIMIT + 1  # the ping, then the bomb up to one byte past
    app_put.assert_awaited_with({"type": "websocket.disconnect", "code": 1009})
    assert sent_close_codes(send) == [1009]
    # The client answers the close: the connection ends.
    await stream.handle(Data(stream_id=1, data=client.send(CloseConnection(code=1009))))
    assert any(isinstance(call.args[0], StreamClosed) for call in send.call_args_list)


# The upstream code deflate.py forks or relies on, as it was when it was written
# (wsproto 1.3.2, Hypercorn 0.18.0): sha256 of each function's source, first 16 digits.
UPSTREAM = {
    PerMessageDeflate.frame_inbound_payload_data: "93bc8692346aa787",
    PerMessageDeflate.frame_inbound_complete: "15ecc689b99856b3",
    Handshake.accept: "e163533bf7919793",  # builds `PerMessageDeflate()` by that name
    WSStream._accept: "144623ad2e13fc56",  # GuardedWSStream._accept extends it
}


@pytest.mark.parametrize("function", UPSTREAM, ids=lambda function: function.__qualname__)
def test_upstream_is_what_deflate_py_was_written_against(function: Any) -> None:
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert digest == UPSTREAM[function], (
        f"{function.__module__}.{function.__qualname__} changed upstream: re-read it against "
        "quartchat/internals/deflate.py (BoundedDeflate forks the two inflating methods) and "
        "frameguard.py (GuardedWSStream._accept), then update this fingerprint"
    )
