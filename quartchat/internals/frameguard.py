"""What Hypercorn does with a socket's frames before the app sees them, guarded in one
place: the stream class Hypercorn's HTTP/1.1 protocol builds each WebSocket from.

1. A frame over `websocket_max_message_size`: Hypercorn 0.18 answers it with close
   1009, then stops handling the events of that read. The client's close reply, usually
   in the same read as the frame's tail, waits unread until the client sends anything
   else (our next ping, up to PING_INTERVAL later), and the app is never told: the
   socket stays in its room, counted and sent to, all that time. Here the app is told at
   once (`websocket.disconnect`, code 1009, so the socket leaves its room), the rest of
   the refused message is read and dropped so that the client's reply ends the
   connection as soon as it arrives (closing it with the message still arriving would
   reset it, and the client might not see its 1009), and a client that does not answer
   within `close_timeout` is reset.
2. Control frames: Hypercorn answers a client's PING itself and tells the app nothing,
   so one client could keep the server answering pings as fast as it can send them
   (hundreds of thousands a second, a whole core, everyone else's round trip slowed a
   hundredfold). PINGs and PONGs draw from a budget of their own
   (CONTROL_FRAMES_PER_SECOND, _BURST), made at a socket's first control frame; one over
   it is dropped (not answered), and a client that keeps on (RATE_LIMIT_STRIKES) is
   closed with 1008.
3. Protocol errors: when wsproto cannot parse a frame (invalid UTF-8 in text, RSV bits
   without an extension, a reserved opcode, an unmasked client frame, a continuation
   without a start) it reports a close with RFC 6455's code (1007 or 1002) but leaves
   the connection OPEN, and Hypercorn answers a close only to a connection in
   REMOTE_CLOSING, so it dropped TCP without the close frame a browser shows. Here the
   close frame goes out with that code.
4. Compression (`WS_COMPRESSION=true`): the socket's permessage-deflate is
   `BoundedDeflate` (deflate.py), which stops inflating a message at
   `websocket_max_message_size`; the socket is then refused 1009 as in 1., and nothing
   more it sends is inflated.

`install` also closes the doors around the guard: HTTP/2 (http11.py).

Without the Hypercorn it was written for, `install` installs nothing and Hypercorn's own
behaviour stays (startup's shortcut line says so).
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

from hypercorn.protocol import h11, ws_stream
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import FrameTooLargeError, WSStream
from hypercorn.typing import ASGISendEvent, WebsocketAcceptEvent
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping, Pong
from wsproto.extensions import PerMessageDeflate

from quartchat.config.closelog import socket_closed_in
from quartchat.config.settings import Settings
from quartchat.internals import http11
from quartchat.internals.deflate import BoundedDeflate, limit
from quartchat.internals.transport import abort_connection
from quartchat.wire.budget import FrameBudget
from quartchat.wire.frames import CloseCode

log = logging.getLogger(__name__)


class GuardedWSStream(WSStream):
    """Hypercorn's WebSocket stream with the four guards above."""

    close_timeout = 2.0
    control_rate = 5.0
    control_burst = 20
    control_strikes = 50
    refused_too_big = False
    control_budget: FrameBudget | None = None  # made at the first control frame
    inflater: BoundedDeflate | None = None  # permessage-deflate, when negotiated

    async def app_send(self, message: ASGISendEvent | None) -> None:
        if message is None and self.refused_too_big:
            return  # the client's close reply (or the timeout) ends the connection
        await super().app_send(message)

    async def _accept(self, message: WebsocketAcceptEvent) -> None:
        await super()._accept(message)
        self.inflater = limit(self.connection, self.config.websocket_max_message_size)

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                if self.refused_too_big:
                    continue
                if self.inflater is not None and self.inflater.refused:
                    await self._refuse_too_big()
                    continue
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    await self._refuse_too_big()
                    continue
                if event.message_finished:
                    assert self.app_put is not None
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, (Ping, Pong)):
                budget = self._control_budget()
                if budget.take(monotonic()):
                    if budget.exhausted:
                        await self._close(CloseCode.POLICY_VIOLATION, "control frame rate exceeded")
                        return
                    continue  # over the budget: not answered
                if isinstance(event, Ping):
                    await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state is ConnectionState.OPEN:
                    # A close the client did not send: wsproto could not parse a frame.
                    await self._close(event.code, event.reason or "")
                    return
                if self.connection.state is ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(StreamClosed(stream_id=self.stream_id))

    def _control_budget(self) -> FrameBudget:
        if self.control_budget is None:
            self.control_budget = FrameBudget(
                self.control_rate, self.control_burst, self.control_strikes, monotonic()
            )
        return self.control_budget

    async def _close(self, code: int, reason: str) -> None:
        """Close with `code` as if answering the client's own close: Hypercorn writes
        the close frame, then ends the connection."""
        socket_closed_in(self.scope, code, reason)
        self.connection._state = ConnectionState.REMOTE_CLOSING
        await self._send_wsproto_event(CloseConnection(code=code, reason=reason))
        await self.send(StreamClosed(stream_id=self.stream_id))

    async def _refuse_too_big(self) -> None:
        socket_closed_in(self.scope, CloseCode.MESSAGE_TOO_BIG, "message too big")
        self.refused_too_big = True
        self.buffer.clear()
        await self._send_wsproto_event(CloseConnection(code=CloseCode.MESSAGE_TOO_BIG))
        asyncio.get_running_loop().call_later(self.close_timeout, self._abort_unanswered)
        assert self.app_put is not None
        await self.app_put({"type": "websocket.disconnect", "code": CloseCode.MESSAGE_TOO_BIG})

    def _abort_unanswered(self) -> None:
        if not self.closed:
            aborted = abort_connection(self)
            log.info("socket closed with 1009 did not answer in time; aborted: %s", aborted)


def install(settings: Settings) -> bool:
    """Have Hypercorn build its HTTP/1.1 WebSocket streams as `GuardedWSStream`, with
    `BoundedDeflate`, and serve HTTP/1.1 only (http11.py); False (Hypercorn's own
    behaviour stays) under a Hypercorn it was not written for."""
    GuardedWSStream.close_timeout = settings.close_timeout
    GuardedWSStream.control_rate = settings.control_frames_per_second
    GuardedWSStream.control_burst = settings.control_frames_burst
    GuardedWSStream.control_strikes = settings.rate_limit_strikes
    if getattr(h11, "WSStream", None) not in (WSStream, GuardedWSStream):
        return False
    if getattr(ws_stream, "PerMessageDeflate", None) not in (PerMessageDeflate, BoundedDeflate):
        return False
    setattr(h11, "WSStream", GuardedWSStream)  # noqa: B010 (not re-exported)
    setattr(ws_stream, "PerMessageDeflate", BoundedDeflate)  # noqa: B010 (not re-exported)
    # A guard that HTTP/2 goes around guards nothing.
    return http11.install()
