"""Request heads measured before Hypercorn's h11 parses them.

h11 parses a request head in one go once all of it has arrived, and Hypercorn reads up
to 64 KiB at a time, so `h11_max_incomplete_size` (16 KiB) only stops a head that is
still incomplete: a head of 3,500 headers sent in one write cost 13-15 ms of CPU to
parse (7,000 cookies 30 ms), on any path, `/health` included, before the app could
refuse anything. Here the connection looks at the head it holds before h11 parses it,
and refuses one of more than `MAX_REQUEST_HEADERS` header lines, or longer than
`h11_max_incomplete_size` bytes, as h11 refuses an incomplete head that is too long:
Hypercorn answers 431 and closes the connection.

http11.py's `HTTP11Protocol` (installed as `hypercorn.protocol.H11Protocol`, which
builds every connection) makes its `h11.Connection` a `HeadGuardedConnection`. Without
it every head is parsed, as before (startup's shortcut line says so).
"""

from __future__ import annotations

from typing import Any

import h11
from hypercorn import protocol

from quartchat.config.settings import Settings

_HEAD_END = b"\r\n\r\n"


class HeadGuardedConnection(h11.Connection):
    """An h11 server connection that refuses a request head with more than
    `max_headers` lines or more than `max_head_bytes` bytes before parsing it."""

    max_headers = 100  # MAX_REQUEST_HEADERS, set by `install`

    def __init__(self, max_head_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes

    def next_event(self) -> Any:
        if self.their_state is h11.IDLE:  # what it holds starts with a request head
            self._measure_head()
        return super().next_event()

    def _measure_head(self) -> None:
        held, _ = self.trailing_data
        end = held.find(_HEAD_END, 0, self.max_head_bytes + len(_HEAD_END))
        head_bytes = end if end >= 0 else len(held)
        # Before the blank line, one newline ends the request line and each header but
        # the last: as many as there are headers.
        if held.count(b"\n", 0, head_bytes) > self.max_headers:
            raise h11.RemoteProtocolError(
                f"more than {self.max_headers} header lines", error_status_hint=431
            )
        if head_bytes > self.max_head_bytes:
            raise h11.RemoteProtocolError(
                f"a head over {self.max_head_bytes} bytes", error_status_hint=431
            )


def install(settings: Settings) -> bool:
    """Give every HTTP/1.1 connection a `HeadGuardedConnection` of `MAX_REQUEST_HEADERS`
    (through http11.py's `HTTP11Protocol`, which must be installed first); False (every
    head is parsed, as before) when Hypercorn does not build its connections with it."""
    HeadGuardedConnection.max_headers = settings.max_request_headers
    return bool(getattr(getattr(protocol, "H11Protocol", None), "guards_heads", False))
