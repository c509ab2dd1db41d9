"""The request-head guard with h11 alone: a head is measured before it is parsed,
whether it arrives in one piece, in several, or behind another request."""

from __future__ import annotations

import h11
import pytest

from quartchat.internals.headguard import HeadGuardedConnection


def head(headers: int, value: bytes = b"y") -> bytes:
    lines = b"".join(b"x-%d: %s\r\n" % (index, value) for index in range(headers))
    return b"GET /health HTTP/1.1\r\nhost: a\r\n" + lines + b"\r\n"


def request_of(data: bytes, max_bytes: int = 16384) -> h11.Request:
    connection = HeadGuardedConnection(max_bytes)  # and the default 100 header lines
    connection.receive_data(data)
    event = connection.next_event()
    assert isinstance(event, h11.Request)
    return event


def test_a_head_within_the_limits_is_parsed() -> None:
    assert len(request_of(head(99)).headers) == 100  # host and 99 more


@pytest.mark.parametrize("pieces", [1, 3])
def test_too_many_header_lines_are_refused_with_431(pieces: int) -> None:
    connection = HeadGuardedConnection(65536)
    data = head(3500)
    size = len(data) // pieces + 1
    with pytest.raises(h11.RemoteProtocolError) as refused:
        for start in range(0, len(data), size):
            connection.receive_data(data[start : start + size])
            assert connection.next_event() is h11.NEED_DATA
    assert refused.value.error_status_hint == 431


def test_a_head_over_the_byte_limit_is_refused_even_in_one_piece() -> None:
    # h11 alone parses it: its limit only stops heads still incomplete.
    plain = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
    plain.receive_data(head(10, b"v" * 3000))
    assert isinstance(plain.next_event(), h11.Request)
    with pytest.raises(h11.RemoteProtocolError) as refused:
        request_of(head(10, b"v" * 3000))
    assert refused.value.error_status_hint == 431


def test_a_head_behind_another_request_is_measured_too() -> None:
    connection = HeadGuardedConnection(65536)
    connection.receive_data(head(1) + head(3500))
    assert isinstance(connection.next_event(), h11.Request)
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    connection.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
    connection.send(h11.EndOfMessage())
    connection.start_next_cycle()
    with pytest.raises(h11.RemoteProtocolError):
        connection.next_event()
