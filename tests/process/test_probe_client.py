"""The probe's WebSocket client: frames it makes by hand, and a connection that ends."""

from __future__ import annotations

import asyncio

import pytest
from wsproto.frame_protocol import FrameDecoder, Opcode

from quartchat.process.probe_client import ConnectionEndedError, ProbeSocket, masked_frame


def test_a_hand_made_frame_is_masked_as_a_client_must() -> None:
    frame = masked_frame(0x81, b'{"type": "ping"}')
    decoder = FrameDecoder(client=False)  # a server's decoder: it unmasks
    decoder.receive_bytes(frame)
    decoded = decoder.process_buffer()
    assert decoded is not None
    assert decoded.opcode is Opcode.TEXT and decoded.payload == b'{"type": "ping"}'
    assert frame[1] & 0x80  # the mask bit


def test_rsv_bits_are_kept_for_the_frame_guard_to_refuse() -> None:
    assert masked_frame(0xC1, b"{}")[0] == 0xC1


async def test_a_connection_that_ends_before_an_event_says_so() -> None:
    reader = asyncio.StreamReader()
    reader.feed_eof()
    socket = ProbeSocket(reader, writer=None)  # type: ignore[arg-type]
    with pytest.raises(ConnectionEndedError):
        await socket.next_event()
    assert socket.ended


async def test_a_connection_reset_after_the_close_ends_it_too() -> None:
    # The server closed after its close frame, and the kernel answered the probe's last
    # write with a reset: the stream reports it on the next read.
    reader = asyncio.StreamReader()
    reader.set_exception(BrokenPipeError())
    socket = ProbeSocket(reader, writer=None)  # type: ignore[arg-type]
    await socket.wait_closed()
    assert socket.ended
    reset = asyncio.StreamReader()
    reset.set_exception(ConnectionResetError())
    with pytest.raises(ConnectionEndedError):
        await ProbeSocket(reset, writer=None).next_event()  # type: ignore[arg-type]
