"""Request heads measured before Hypercorn's h11 parses them.

h11 parses a request head in one go once all of it has arrived, and Hypercorn reads up
to 64 KiB at a time, so `h11_max_incomplete_size` (16 KiB) only stops a head that is
still incomplete: a head of 3,500 headers sent in one write cost 13-15 ms of CPU to
parse (7,000 cookies 30 ms), on any path, `/health` included, before the app could
refuse anything. Here the connection looks at the head it holds before h11 parses it,
and refuses one of more than `MAX_REQUEST_HEADERS` header lines, or longer than
`h11_max_incomplete_size` bytes, as h11 refuses an incomplete head that is too long:
Hypercorn answers 431 and closes the connection.

`GuardedH11Protocol` is Hypercorn 0.18's `H11Protocol` whose `h11.Connection` is a
`HeadGuardedConnection`, installed as `hypercorn.protocol.H11Protocol` (which builds
every HTTP/1.1 connection). Without that name `install` installs nothing and every
head is parsed, as before (startup's shortcut line says so).
"""

from __future__ import annotations

from typing import Any

import h11
import hypercorn.protocol
from hypercorn.protocol.h11 import H11Protocol

from ..config import Settings

_HEAD_END = b"\r\n\r\n"


class HeadGuardedConnection(h11.Connection):
    """An h11 server connection that refuses a request head with more than
    `max_headers` lines or more than `max_head_bytes` bytes before parsing it."""

    def __init__(self, max_headers: int, max_head_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_headers = max_headers
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


class GuardedH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol with a `HeadGuardedConnection`."""

    max_headers = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = HeadGuardedConnection(
            self.max_headers, self.config.h11_max_incomplete_size
        )


def install(settings: Settings) -> bool:
    """Have Hypercorn build its HTTP/1.1 connections as `GuardedH11Protocol`; False
    (every head is parsed, as before) under a Hypercorn it was not written for."""
    GuardedH11Protocol.max_headers = settings.max_request_headers
    if getattr(hypercorn.protocol, "H11Protocol", None) not in (H11Protocol, GuardedH11Protocol):
        return False
    setattr(hypercorn.protocol, "H11Protocol", GuardedH11Protocol)  # noqa: B010
    return True
