"""What an open socket sends, in order: first its replay, then the room's live frames.

An idle socket holds no task of its own. A live frame is written at once (a write to
the connection is synchronous; only backpressure needs to wait) while nothing is
queued before it and the connection takes writes; otherwise it waits in the
subscriber's bounded queue, and a drain task, created only then, sends the queue and
ends once it is empty. The replay is such a task too: live frames queue behind it,
and a message the replay already sent is skipped (by its room sequence) whenever it
arrives live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import monotonic

from .hub import Frame, Subscriber
from .metrics import Metrics
from .transport import SocketWriter

log = logging.getLogger(__name__)

CLOSE_INTERNAL_ERROR = 1011
# Frames written to one socket with a single write when they queued up meanwhile.
MAX_WRITE_BATCH = 256

# Sends the replay through the writer; returns the last room sequence it sent.
Replayer = Callable[[SocketWriter], Awaitable[int]]


class Outbox:
    """The send side of one open socket (the subscriber's `sink`)."""

    __slots__ = ("_fanout", "_last_seq", "_subscriber", "_task", "_writer")

    def __init__(self, subscriber: Subscriber, writer: SocketWriter, metrics: Metrics) -> None:
        self._subscriber = subscriber
        self._writer = writer
        self._fanout = metrics.fanout_seconds
        self._last_seq = 0
        self._task: asyncio.Task[None] | None = None

    def open(self, replay: Replayer | None) -> None:
        """Start sending: the replay if any, what queued before the handshake, then live."""
        self._subscriber.sink = self
        if replay is not None or not self._subscriber.queue.empty():
            self._start(replay)

    def close(self) -> None:
        """Stop sending (what is still queued is dropped: the socket is closing)."""
        self._subscriber.sink = None
        if self._task is not None:
            self._task.cancel()

    def offer(self, frame: Frame) -> bool:
        if self._task is not None:
            return False  # a drain or the replay is under way: the frame goes behind it
        if frame.seq:
            if frame.seq <= self._last_seq:
                return True  # the replay sent it already
            if not self._writer.write_now(frame):
                return False
            self._last_seq = frame.seq
        elif not self._writer.write_now(frame):
            return False
        self._fanout.observe(monotonic() - frame.born)
        return True

    def backlog(self) -> None:
        if self._task is None:
            self._start(None)

    def _start(self, replay: Replayer | None) -> None:
        self._task = asyncio.create_task(self._drain(replay))
        self._task.add_done_callback(self._on_drain_done)

    async def _drain(self, replay: Replayer | None) -> None:
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
            self._subscriber.request_close(CLOSE_INTERNAL_ERROR, "internal error; reconnect")
