"""GuardedWSStream driven with fakes, as Hypercorn's tests/protocol/test_ws_stream.py
drives WSStream: mocks for the app, the task group and the HTTP/1.1 protocol's send,
and client frames made by a real wsproto client connection or written by hand."""

from __future__ import annotations

import asyncio
from typing import Any, cast
from unittest.mock import AsyncMock, call

import pytest
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.protocol import h11
from hypercorn.protocol.events import Data, Request, StreamClosed
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.typing import ConnectionState as HypercornConnectionState
from hypercorn.typing import WebsocketAcceptEvent
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Event, Ping, Pong, TextMessage

from quartchat.config.settings import Settings
from quartchat.internals import frameguard
from quartchat.internals.frameguard import GuardedWSStream

MAX_MESSAGE = 16
HANDSHAKE = [
    (b"host", b"localhost"),
    (b"connection", b"Upgrade"),
    (b"upgrade", b"websocket"),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-key", b"UnQ3lpJAH6j2PslA993iKQ=="),
]


@pytest.fixture(name="stream")
async def _stream() -> GuardedWSStream:
    """An accepted socket: the app has been spawned and has accepted the handshake."""
    config = Config()
    config.websocket_max_message_size = MAX_MESSAGE
    config.websocket_ping_interval = None
    config._log = AsyncMock(spec=Logger)
    stream = GuardedWSStream(
        AsyncMock(), config, WorkerContext(None), AsyncMock(), False, None, None, AsyncMock(), 1
    )
    stream.task_group.spawn_app.return_value = AsyncMock()  # type: ignore[attr-defined]
    await stream.handle(
        Request(
            stream_id=1,
            headers=HANDSHAKE,
            http_version="1.1",
            method="GET",
            raw_path=b"/ws/r/u",
            state=HypercornConnectionState({}),
        )
    )
    await stream.app_send(cast(WebsocketAcceptEvent, {"type": "websocket.accept"}))
    sent(stream).reset_mock()
    put(stream).reset_mock()
    return stream


def sent(stream: WSStream) -> AsyncMock:
    """What the stream handed to the HTTP/1.1 protocol (frames as Data, StreamClosed)."""
    return cast(AsyncMock, stream.send)


def put(stream: WSStream) -> AsyncMock:
    """What the stream handed to the app (websocket.receive, websocket.disconnect)."""
    return cast(AsyncMock, stream.app_put)


def client_frames(*events: Event) -> bytes:
    """Masked frames as a client sends them."""
    client = Connection(ConnectionType.CLIENT)
    return b"".join(client.send(event) for event in events)


def server_frame(event: Event) -> bytes:
    return Connection(ConnectionType.SERVER).send(event)


async def receive(stream: WSStream, data: bytes) -> None:
    await stream.handle(Data(stream_id=1, data=data))


async def test_a_message_within_the_limit_reaches_the_app(stream: GuardedWSStream) -> None:
    await receive(stream, client_frames(TextMessage(data="hello")))
    assert put(stream).call_args_list == [
        call({"type": "websocket.receive", "bytes": None, "text": "hello"})
    ]
    sent(stream).assert_not_called()


async def test_an_oversized_message_is_closed_1009_and_the_app_told_at_once(
    stream: GuardedWSStream,
) -> None:
    head = TextMessage(data="a" * 10, message_finished=False)
    middle = TextMessage(data="b" * 10, message_finished=False)  # over 16 here
    tail = TextMessage(data="c" * 10, message_finished=True)
    client = Connection(ConnectionType.CLIENT)
    await receive(stream, client.send(head) + client.send(middle))
    assert sent(stream).call_args_list == [
        call(Data(stream_id=1, data=server_frame(CloseConnection(code=1009))))
    ]
    assert put(stream).call_args_list == [call({"type": "websocket.disconnect", "code": 1009})]

    # The rest of the refused message is read and dropped, and the app ending (None)
    # neither sends Hypercorn's 1011 nor ends the connection before the client replies.
    await receive(stream, client.send(tail))
    await stream.app_send(None)
    assert sent(stream).call_count == 1
    assert put(stream).call_count == 1

    # The client's close reply ends the connection.
    await receive(stream, client.send(CloseConnection(code=1009)))
    assert sent(stream).call_args_list[1:] == [call(StreamClosed(stream_id=1))]
    assert stream.connection.state is ConnectionState.CLOSED


def record_aborts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    aborted: list[object] = []

    def abort(stream: object) -> bool:
        aborted.append(stream)
        return True

    monkeypatch.setattr(frameguard, "abort_connection", abort)
    return aborted


async def test_a_client_that_does_not_answer_its_1009_is_reset(
    stream: GuardedWSStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    aborted = record_aborts(monkeypatch)
    stream.close_timeout = 0.05
    await receive(stream, client_frames(TextMessage(data="x" * (MAX_MESSAGE + 1))))
    await asyncio.sleep(0.02)
    assert aborted == []
    await asyncio.sleep(0.1)
    assert aborted == [stream]


async def test_a_client_that_answers_its_1009_is_not_reset(
    stream: GuardedWSStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    aborted = record_aborts(monkeypatch)
    stream.close_timeout = 0.05
    client = Connection(ConnectionType.CLIENT)
    await receive(stream, client.send(TextMessage(data="x" * (MAX_MESSAGE + 1))))
    await receive(stream, client.send(CloseConnection(code=1009)))
    await stream.handle(StreamClosed(stream_id=1))  # what Hypercorn does on StreamClosed
    await asyncio.sleep(0.15)
    assert aborted == []


async def test_control_frames_over_the_budget_are_dropped_then_closed_1008(
    stream: GuardedWSStream,
) -> None:
    stream.control_rate = 0.001  # no refill within the test
    stream.control_burst = 2
    stream.control_strikes = 3
    assert stream.control_budget is None  # a silent socket holds no budget

    await receive(stream, client_frames(Ping(b"1"), Ping(b"2")))
    pongs = [call(Data(stream_id=1, data=server_frame(Pong(payload)))) for payload in (b"1", b"2")]
    assert sent(stream).call_args_list == pongs

    await receive(stream, client_frames(Ping(b"3"), Ping(b"4")))  # strikes 1 and 2
    assert sent(stream).call_args_list == pongs  # over the budget: not answered

    await receive(stream, client_frames(Ping(b"5"), TextMessage(data="after")))  # strike 3
    close = CloseConnection(code=1008, reason="control frame rate exceeded")
    assert sent(stream).call_args_list[2:] == [
        call(Data(stream_id=1, data=server_frame(close))),
        call(StreamClosed(stream_id=1)),
    ]
    put(stream).assert_not_called()  # nothing after the closing frame is handled
    assert stream.connection.state is ConnectionState.CLOSED


async def test_client_pongs_draw_from_the_same_budget(stream: GuardedWSStream) -> None:
    stream.control_rate = 0.001
    stream.control_burst = 2
    await receive(stream, client_frames(Pong(b"a"), Pong(b"b"), Ping(b"c")))
    sent(stream).assert_not_called()  # the pongs spent the budget: the ping is dropped


def _masked(first_byte: int, payload: bytes) -> bytes:
    """A client frame with the all-zero mask (the payload goes as is)."""
    return bytes((first_byte, 0x80 | len(payload))) + b"\0\0\0\0" + payload


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (_masked(0x81, b"\xff"), 1007),  # text that is not UTF-8
        (_masked(0xC1, b"x"), 1002),  # RSV1 without an extension
        (_masked(0x83, b""), 1002),  # reserved opcode
        (bytes((0x81, 0x01)) + b"x", 1002),  # unmasked client frame
        (_masked(0x80, b"x"), 1002),  # a continuation without a start
    ],
    ids=["invalid-utf8", "rsv1", "reserved-opcode", "unmasked", "continuation-first"],
)
async def test_a_protocol_error_gets_a_close_frame_with_its_code(
    stream: GuardedWSStream, frame: bytes, code: int
) -> None:
    await receive(stream, frame)
    calls = sent(stream).call_args_list
    assert len(calls) == 2, calls
    data = calls[0].args[0]
    assert isinstance(data, Data)
    assert data.data[0] == 0x88  # FIN + close
    assert int.from_bytes(data.data[2:4], "big") == code
    assert calls[1] == call(StreamClosed(stream_id=1))
    assert stream.connection.state is ConnectionState.CLOSED
    put(stream).assert_not_called()


async def test_a_client_close_is_answered_with_its_code(stream: GuardedWSStream) -> None:
    await receive(stream, client_frames(CloseConnection(code=1000, reason="bye")))
    assert sent(stream).call_args_list == [
        call(Data(stream_id=1, data=server_frame(CloseConnection(code=1000, reason="bye")))),
        call(StreamClosed(stream_id=1)),
    ]


def test_install_makes_http11_streams_guarded_with_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(h11, "WSStream", WSStream)
    for name in ("close_timeout", "control_rate", "control_burst", "control_strikes"):
        monkeypatch.setattr(GuardedWSStream, name, getattr(GuardedWSStream, name))
    settings = Settings(
        close_timeout=0.5,
        control_frames_per_second=3.0,
        control_frames_burst=4,
        rate_limit_strikes=7,
    )
    assert frameguard.install(settings) is True
    assert vars(h11)["WSStream"] is GuardedWSStream
    guarded: dict[str, Any] = {
        "close_timeout": GuardedWSStream.close_timeout,
        "control_rate": GuardedWSStream.control_rate,
        "control_burst": GuardedWSStream.control_burst,
        "control_strikes": GuardedWSStream.control_strikes,
    }
    assert guarded == {
        "close_timeout": 0.5,
        "control_rate": 3.0,
        "control_burst": 4,
        "control_strikes": 7,
    }


def test_install_leaves_a_stream_class_it_was_not_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class OtherStream(WSStream):
        pass

    monkeypatch.setattr(h11, "WSStream", OtherStream)
    assert frameguard.install(Settings()) is False
    assert vars(h11)["WSStream"] is OtherStream
