"""Guarding what Hypercorn does with a socket's frames before Quart sees any of them.

1. Control frames: Hypercorn answers a client's PING itself and tells the app nothing,
   so one client could keep the server answering pings as fast as it can send them
   (hundreds of thousands a second, a whole core, everyone else's round trip slowed
   a hundredfold). PINGs and PONGs draw from a budget of their own; one over it is
   dropped (not answered), and a client that keeps on is closed with 1008.
2. Protocol errors: when wsproto cannot parse a frame (invalid UTF-8 in text, RSV bits
   without an extension, a reserved opcode, an unmasked client frame, a continuation
   without a start) it reports a close with RFC 6455's code (1007 or 1002) but leaves
   the connection OPEN, and Hypercorn answers a close only to a connection in
   REMOTE_CLOSING, so it dropped TCP without the close frame a browser shows.

Both wrap the `events` of the current socket's wsproto connection, the one place every
received frame passes through; Hypercorn then sends the close frame itself, down its
own chain. Under another server (or another Hypercorn) nothing is wrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from hypercorn.protocol.ws_stream import WSStream
from wsproto.connection import Connection, ConnectionState
from wsproto.events import CloseConnection, Event, Ping, Pong

from .frames import CloseCode
from .limits import FrameBudget
from .transport import asgi_send


def guard_connection(budget: FrameBudget, clock: Callable[[], float]) -> bool:
    """Wrap the current socket's frame events (after the accept); False if unreachable."""
    stream = getattr(asgi_send(), "__self__", None)
    connection = getattr(stream, "connection", None)
    if not isinstance(stream, WSStream) or not isinstance(connection, Connection):
        return False
    events = connection.events

    def guarded_events() -> Generator[Event, None, None]:
        for event in events():
            if isinstance(event, (Ping, Pong)) and budget.take(clock()):
                if not budget.exhausted:
                    continue
                event = CloseConnection(CloseCode.POLICY_VIOLATION, "control frame rate exceeded")
            elif not isinstance(event, CloseConnection) or connection.state is not (
                ConnectionState.OPEN
            ):
                yield event
                continue
            # A close the client did not send (a parse failure, or our 1008): answering
            # it as if the client had sent it makes Hypercorn write the close frame
            # with this code and then end the connection.
            connection._state = ConnectionState.REMOTE_CLOSING
            yield event
            return

    connection.events = guarded_events  # type: ignore[method-assign]
    return True
