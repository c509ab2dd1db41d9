"""The startup probe: every fast path proven by behaviour before the first client.

quartchat's shortcuts into Quart, Hypercorn, wsproto and aiosqlite (`internals/`) can
break without an error: under Quart 0.23 the handshake still succeeded (101), and then
no frame ever reached the route, while every name the startup check looks for was
there. So before `quartchat serve` listens, the lifecycle's "fast paths" step talks to
the app over a loopback connection served by Hypercorn's own connection class
(`internals/loopback.py`), as a client would: every layer a client's socket meets is
the one that will serve clients. Nothing is stored and no client can see the probe:
its room and user exist only in this process's directory cache, for the probe's
duration (their ids are random), and no listener accepts before it ends.

One socket: the handshake (offering permessage-deflate, which must be declined unless
WS_COMPRESSION is on), a frame handed to the socket's outbox that must be written
straight to the connection, a ping control frame the same way, a protocol ping that
must be answered, the app's `{"type": "ping"}` that must come back as a pong (through
the frame guard, the route and the outbox), a close that must be answered and must
take the socket out of its room. A second socket sends a frame with RSV1 set, which
the frame guard must answer with close 1002. On SQLite, an empty batch goes through
the message store's write path (commit.py, one thread call through aiosqlite's
`_execute`). Any failure raises `FastPathBroken` naming the shortcut.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TypeVar
from uuid import uuid4

from hypercorn.config import Config
from hypercorn.typing import AppWrapper
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from quartchat.internals import loopback
from quartchat.internals.shortcuts import (
    COMPRESSION_REFUSED,
    FRAME_GUARD,
    HEAD_GUARD,
    INLINE_SOCKET,
    SOCKET_WRITES,
    SQLITE_BATCH,
    STALLED_RESET,
    ShortcutMissingError,
    versions,
)
from quartchat.process.probe_client import ConnectionEndedError, ProbeSocket, masked_frame
from quartchat.rooms.chat import Chat
from quartchat.rooms.hub import Subscriber
from quartchat.storage.commit import commit
from quartchat.wire.frames import CloseCode
from quartchat.wire.framing import PING, Frame

log = logging.getLogger(__name__)

# For the whole socket probe, and again for the SQLite one; the healthy case takes
# milliseconds.
PROBE_TIMEOUT = 5.0
PROBE_USERNAME = "quartchat startup probe"
WHERE = {
    SOCKET_WRITES: "internals/transport.py SocketWriter",
    STALLED_RESET: "internals/transport.py abort_connection",
    COMPRESSION_REFUSED: "internals/transport.py refuse_compression",
    FRAME_GUARD: "internals/frameguard.py GuardedWSStream",
    HEAD_GUARD: "internals/headguard.py GuardedH11Protocol",
    INLINE_SOCKET: "internals/inline_socket.py InlineWebsocketConnection",
    SQLITE_BATCH: "internals/shortcuts.py sqlite_thread, commit.py",
}
DIRECT = '{"type":"probe","path":"direct"}'
FRAMED = '{"type":"probe","path":"framed"}'
PING_PAYLOAD = b"quartchat probe"
NORMAL_CLOSURE = 1000
ABNORMAL_CLOSURE = 1006  # what wsproto reports when the connection ends without a close
RSV1_TEXT_FRAME = 0xC1  # FIN, RSV1 (no extension allows it), opcode 1

E = TypeVar("E", bound=Event)


class FastPathBroken(BaseException):
    """A fast path failed its proof: the server must not serve.

    A BaseException so that Quart's and Hypercorn's lifespan handlers, which log every
    Exception with its traceback and carry on, let it through to `quartchat serve`,
    which reports it in one line (`line()`) and exits."""

    def __init__(self, shortcut: str, problem: str) -> None:
        super().__init__(f"{shortcut}: {problem}")
        self.shortcut = shortcut
        self.problem = problem

    def line(self) -> str:
        where = WHERE.get(self.shortcut, "")
        return (
            f"fast path broken, not serving: {self.shortcut} ({where}): {self.problem}; "
            f"installed: {versions()}; install the versions the lock pins"
        )


class _PathMarker(Frame):
    """Written straight to the connection (its `wire`, the fast path) it reads "direct";
    sent any other way (its `text`, framed by Quart, Hypercorn or wsproto) "framed"."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(0, FRAMED)
        self._wire = bytes(Frame(0, DIRECT).wire)


class SocketProbe:
    """The socket half of the probe, against one app and Hypercorn config."""

    def __init__(self, chat: Chat, app: AppWrapper, config: Config) -> None:
        self._chat = chat
        self._app = app
        self._config = config
        suffix = uuid4().hex
        self._room = f"quartchat-probe-{suffix}"
        self._user = f"quartchat-probe-{suffix}"
        self._shortcut = INLINE_SOCKET
        self._doing = "starting"

    async def run(self) -> None:
        """Raise FastPathBroken unless every step passes within PROBE_TIMEOUT."""
        directory = self._chat.directory
        directory.add_room(self._room)
        directory.add_user(self._user, PROBE_USERNAME)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._talk()
                await self._break_the_protocol()
            if self._chat.hub.subscribers_of(self._room):
                self._step(INLINE_SOCKET, "the route's end after the close")
                raise self._broken("the socket stayed in its room")
        except TimeoutError:
            raise self._broken(f"no answer within {PROBE_TIMEOUT:g} s") from None
        except ConnectionEndedError:
            raise self._broken("the server closed the connection") from None
        except Exception as error:  # whatever went wrong, the answer is one line
            raise self._broken(f"failed: {error!r}") from None
        finally:
            directory.forget_room(self._room)
            directory.forget_user(self._user)

    async def _talk(self) -> None:
        async with loopback.connection(self._app, self._config) as (reader, writer, serving):
            client = ProbeSocket(reader, writer)
            subscriber = await self._handshake(client, offer_compression=True)
            await self._server_frames(client, subscriber)
            self._step(FRAME_GUARD, "a protocol ping")
            client.send(Ping(PING_PAYLOAD))
            pong = await self._expect(client, Pong)
            if pong.payload != PING_PAYLOAD:
                raise self._broken(f"the pong carried {bytes(pong.payload)!r}")
            self._step(INLINE_SOCKET, 'the app\'s {"type": "ping"} through the route')
            client.send(TextMessage('{"type": "ping"}'))
            answer = await self._expect(client, TextMessage)
            if _frame_type(answer.data) != "pong":
                raise self._broken(f"answered with {answer.data[:100]!r}")
            self._step(FRAME_GUARD, "the client's close")
            client.send(CloseConnection(NORMAL_CLOSURE))
            await self._expect(client, CloseConnection)
            await client.wait_closed()
            self._step(INLINE_SOCKET, "the route's end after the close")
            await asyncio.shield(serving)

    async def _handshake(self, client: ProbeSocket, offer_compression: bool) -> Subscriber:
        self._step(INLINE_SOCKET, "the handshake")
        target = f"/ws/{self._room}/{self._user}"
        if self._chat.tokens.enabled:
            target += f"?token={self._chat.tokens.single_use(self._user)}"
        offer = offer_compression and not self._chat.settings.ws_compression
        extensions = [PerMessageDeflate()] if offer else []
        client.send(Request(host="localhost", target=target, extensions=extensions))
        event = await client.next_event()
        if isinstance(event, RejectConnection):
            raise self._broken(f"the handshake was answered with HTTP {event.status_code}")
        if not isinstance(event, AcceptConnection):
            raise self._broken(f"the handshake was answered with {_short(event)}")
        if offer and event.extensions:
            self._step(COMPRESSION_REFUSED, "the handshake")
            raise self._broken("permessage-deflate was accepted though WS_COMPRESSION is off")
        self._step(INLINE_SOCKET, "the route's outbox after the handshake")
        while True:  # the route opens it once the 101 is written
            mine = self._chat.hub.subscribers_of(self._room)
            if mine and mine[0].sink is not None:
                return mine[0]
            await asyncio.sleep(0.001)

    async def _server_frames(self, client: ProbeSocket, subscriber: Subscriber) -> None:
        self._step(SOCKET_WRITES, "a frame handed to the socket's outbox")
        subscriber.deliver(_PathMarker())
        if not subscriber.queue.empty():
            raise self._broken(
                "the connection did not take the write at once (Hypercorn's TCP writer "
                "out of reach): every frame would wait for a task"
            )
        marker = await self._expect(client, TextMessage)
        if marker.data == FRAMED:
            raise self._broken("the frame was framed again on its way, not written as encoded")
        if marker.data != DIRECT:
            raise self._broken(f"the socket received {marker.data[:100]!r}")
        self._step(SOCKET_WRITES, "a ping control frame handed to the socket's outbox")
        subscriber.deliver(PING)
        await self._expect(client, Ping)

    async def _break_the_protocol(self) -> None:
        async with loopback.connection(self._app, self._config) as (reader, writer, serving):
            client = ProbeSocket(reader, writer)
            await self._handshake(client, offer_compression=False)
            self._step(FRAME_GUARD, "a frame with RSV1 set and no extension negotiated")
            client.send_raw(masked_frame(RSV1_TEXT_FRAME, b"{}"))
            close = await self._expect(client, CloseConnection)
            if close.code == ABNORMAL_CLOSURE:
                raise self._broken("the connection was dropped without a close frame")
            if close.code != CloseCode.PROTOCOL_ERROR:
                raise self._broken(f"closed with {close.code}, not {CloseCode.PROTOCOL_ERROR}")
            client.send(close.response())
            await client.wait_closed()
            self._step(INLINE_SOCKET, "the route's end after the close")
            await asyncio.shield(serving)

    async def _expect(self, client: ProbeSocket, kind: type[E]) -> E:
        """The next event of `kind`; pings from the server (its pinger) are skipped, and
        so are frames before a close (the first socket's `user_left`, which the room's
        event batching may deliver to the second one late)."""
        while True:
            event = await client.next_event()
            if isinstance(event, kind):
                return event
            skippable = (Ping, TextMessage) if kind is CloseConnection else (Ping,)
            if not isinstance(event, skippable):
                raise self._broken(f"got {_short(event)} instead of {kind.__name__}")

    def _step(self, shortcut: str, doing: str) -> None:
        self._shortcut, self._doing = shortcut, doing

    def _broken(self, problem: str) -> FastPathBroken:
        return FastPathBroken(self._shortcut, f"{self._doing}: {problem}")


async def prove_sqlite_batch() -> None:
    """An empty batch through the message store's SQLite write path (a transaction
    taken and committed on aiosqlite's thread, in one call)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await commit([])
    except TimeoutError:
        raise FastPathBroken(
            SQLITE_BATCH, f"an empty batch did not commit within {PROBE_TIMEOUT:g} s"
        ) from None
    except ShortcutMissingError as error:
        raise FastPathBroken(SQLITE_BATCH, str(error)) from None
    except Exception as error:
        raise FastPathBroken(SQLITE_BATCH, f"an empty batch failed: {error!r}") from None


async def prove(chat: Chat, app: AppWrapper, config: Config, sqlite: bool) -> None:
    """Prove the socket path (and the SQLite write path on SQLite); log the result."""
    started, cpu_started = time.perf_counter(), time.process_time()
    await SocketProbe(chat, app, config).run()
    if sqlite:
        await prove_sqlite_batch()
    elapsed_ms = 1000 * (time.perf_counter() - started)
    cpu_ms = 1000 * (time.process_time() - cpu_started)
    paths = "socket path" + (" and SQLite batch" if sqlite else "")
    log.info("fast paths ok: %s proven in %.1f ms (%.1f ms of CPU)", paths, elapsed_ms, cpu_ms)


def _frame_type(text: str) -> object:
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame.get("type") if isinstance(frame, dict) else None


def _short(event: Event) -> str:
    text = repr(event)
    return text if len(text) <= 120 else text[:117] + "..."
