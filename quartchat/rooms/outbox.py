"""What an open socket sends, in order: first its replay, then the room's live frames.

An idle socket holds no task of its own. A live frame goes into the connection's
write buffer without a task (a write is synchronous; only backpressure needs to wait)
while nothing is queued before it and the connection takes writes: the frames a
socket gets within one turn of the event loop leave in one write at the end of that
turn (a busy room's socket would otherwise make a system call per frame). Otherwise
the frame waits in the subscriber's bounded queue, and a drain task, created only
then, sends the queue and ends once it is empty. The replay is such a task too: live
frames queue behind it, and a message the replay already sent is skipped (by its room
sequence) whenever it arrives live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import monotonic

from quartchat.internals.transport import SocketWriter
from quartchat.rooms.hub import Subscriber
from quartchat.rooms.metrics import Metrics
from quartchat.wire.frames import CloseCode
from quartchat.wire.framing import Frame

log = logging.getLogger(__name__)

# Frames written to one socket with a single write when they queued up meanwhile.
MAX_WRITE_BATCH = 256

# Sends the replay through the writer; returns the last room sequence it sent.
Replayer = Callable[[SocketWriter], Awaitable[int]]

# Per event loop: the outboxes with frames to write at the end of the current turn.
_UNWRITTEN: dict[asyncio.AbstractEventLoop, list[Outbox]] = {}


def _write_at_end_of_turn(outbox: Outbox) -> None:
    loop = asyncio.get_running_loop()
    outboxes = _UNWRITTEN.get(loop)
    if outboxes is None:
        outboxes = _UNWRITTEN[loop] = []
        loop.call_soon(_write_all, loop)
    outboxes.append(outbox)


def _write_all(loop: asyncio.AbstractEventLoop) -> None:
    for outbox in _UNWRITTEN.pop(loop, ()):
        outbox.write_unwritten()


class Outbox:
    """The send side of one open socket (the subscriber's `sink`)."""

    __slots__ = ("_fanout", "_last_seq", "_subscriber", "_task", "_unwritten", "_writer")

    def __init__(self, subscriber: Subscriber, writer: SocketWriter, metrics: Metrics) -> None:
        self._subscriber = subscriber
        self._writer = writer
        self._fanout = metrics.fanout_seconds
        self._last_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._unwritten: list[Frame] | None = None

    def open(self, replay: Replayer | None) -> None:
        """Start sending: the replay if any, what queued before the handshake, then live."""
        self._subscriber.sink = self
        if replay is not None or not self._subscriber.queue.empty():
            self._start(replay)

    def close(self) -> None:
        """Stop sending (what is still queued is dropped: the socket is closing)."""
        self._subscriber.sink = None
        self._unwritten = None
        if self._task is not None:
            self._task.cancel()

    def offer(self, frame: Frame) -> bool:
        if self._task is not None or not self._writer.can_write_now():
            return False  # behind a drain or the replay, or backpressure: queued
        if frame.seq:
            if frame.seq <= self._last_seq:
                return True  # the replay sent it already
            self._last_seq = frame.seq
        if self._unwritten is None:
            self._unwritten = [frame]
            _write_at_end_of_turn(self)
        else:
            self._unwritten.append(frame)
        return True

    def write_unwritten(self) -> None:
        """Write the frames offered since the last write, in one write."""
        frames, self._unwritten = self._unwritten, None
        if frames:
            self._writer.write_now(frames)
            self._fanout.observe(monotonic() - frames[0].born)

    def backlog(self) -> None:
        if self._task is None:
            self._start(None)

    def _start(self, replay: Replayer | None) -> None:
        self._task = asyncio.create_task(self._drain(replay))
        self._task.add_done_callback(self._on_drain_done)

    async def _drain(self, replay: Replayer | None) -> None:
        self.write_unwritten()  # offered before the socket fell behind: they go first
        if replay is not None:
            self._last_seq = max(self._last_seq, await replay(self._writer))
        queue = self._subscriber.queue
        while not queue.empty():
            frames: list[Frame] = []
            while not queue.empty() and len(frames) < MAX_WRITE_BATCH:
                frame = queue.get_nowait()
                if not frame.seq:
                    frames.append(frame)
                elif frame.seq > self._last_seq:  # else the replay already sent it
                    frames.append(frame)
                    self._last_seq = frame.seq
            if frames:
                await self._writer.send_frames(frames)
                self._fanout.observe(monotonic() - frames[0].born)
        # Empty, with no await since the check: from here on frames are written at once.
        self._task = None

    def _on_drain_done(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("socket writer failed", exc_info=error)
            self._subscriber.request_close(CloseCode.INTERNAL_ERROR, "internal error; reconnect")
