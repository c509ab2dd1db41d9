"""A frame over `websocket_max_message_size`: close 1009 that completes at once.

Hypercorn 0.18 answers such a frame with close 1009, then stops handling the events of
that read. The client's close reply, usually in the same read as the frame's tail, waits
unread until the client sends anything else (our next ping, up to PING_INTERVAL later),
and the app is never told: the socket stays in its room, counted and sent to, all that
time. Hypercorn's HTTP/1.1 protocol builds its WebSocket streams from the class below
instead, which after the 1009:

- tells the app at once that the socket is gone (`websocket.disconnect`, code 1009), so
  it leaves its room;
- goes on reading, dropping the rest of the refused message, so that the client's reply
  ends the connection as soon as it arrives (the TCP connection is closed then, not when
  the app returns: closing it with the refused message still arriving would reset it,
  and the client might not see its 1009);
- resets a connection whose client does not answer within `close_timeout`.

Without the Hypercorn it was written for, `install` installs nothing and Hypercorn's own
behaviour stays.
"""

from __future__ import annotations

import asyncio
import logging

from hypercorn.protocol import h11
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import FrameTooLargeError, WSStream
from hypercorn.typing import ASGISendEvent
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping

from .frames import CloseCode
from .transport import abort_connection

log = logging.getLogger(__name__)


class PromptCloseWSStream(WSStream):
    """Hypercorn's WebSocket stream, but a 1009 close completes promptly (see above)."""

    close_timeout = 2.0
    refused_too_big = False

    async def app_send(self, message: ASGISendEvent | None) -> None:
        if message is None and self.refused_too_big:
            return  # the client's close reply (or the timeout) ends the connection
        await super().app_send(message)

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                if self.refused_too_big:
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
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(StreamClosed(stream_id=self.stream_id))

    async def _refuse_too_big(self) -> None:
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


def install(close_timeout: float) -> bool:
    """Have Hypercorn build its HTTP/1.1 WebSocket streams as `PromptCloseWSStream`;
    False (Hypercorn's own behaviour stays) under a Hypercorn it was not written for."""
    PromptCloseWSStream.close_timeout = close_timeout
    if getattr(h11, "WSStream", None) not in (WSStream, PromptCloseWSStream):
        return False
    setattr(h11, "WSStream", PromptCloseWSStream)  # noqa: B010 (not re-exported)
    return True
