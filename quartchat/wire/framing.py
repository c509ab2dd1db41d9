"""Server frames as bytes: each `Frame` is encoded once and its bytes shared by every
socket it goes to (`EventBatch` for consecutive events written as one, `PING` for the
ping control frame), and `FrameQueue`, the bounded queue of them each socket has.

What the frames say is declared in `frames` (schemas, error and close codes) and built
in `payloads`; `transport` writes these bytes to the connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from time import monotonic


class Frame:
    """Text to write to sockets; `seq` is the message's room sequence, 0 for events.

    One Frame object goes to every socket of a room, so its WebSocket encoding (`wire`)
    is made once, by the first socket that needs it, and shared by all.
    """

    __slots__ = ("_wire", "born", "seq", "text")

    def __init__(self, seq: int, text: str) -> None:
        self.seq = seq
        self.text = text
        self.born = monotonic()
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes | memoryview:
        """The whole server-to-client text frame: FIN, opcode 1, length, unmasked payload."""
        if self._wire is None:
            payload = self.text.encode()
            size = len(payload)
            if size < 126:
                header = bytes((0x81, size))
            elif size < 65536:
                header = bytes((0x81, 126)) + size.to_bytes(2, "big")
            else:
                header = bytes((0x81, 127)) + size.to_bytes(8, "big")
            self._wire = header + payload
        return self._wire

    def parts(self) -> Sequence[Frame]:
        """The single frames this one stands for (itself; an EventBatch's events)."""
        return (self,)

    def __repr__(self) -> str:
        return f"Frame({self.seq}, {self.text!r})"


class EventBatch(Frame):
    """Consecutive event frames `frames[start:stop]` written as one: `wire` is their
    encodings concatenated, often a view into a larger batch's (shared, not copied)."""

    __slots__ = ("_frames", "_start", "_stop", "_view")

    def __init__(
        self,
        frames: list[Frame],
        start: int = 0,
        stop: int | None = None,
        view: memoryview | None = None,
    ) -> None:
        super().__init__(0, "")
        self._frames = frames
        self._start = start
        self._stop = len(frames) if stop is None else stop
        self._view = view
        self.born = frames[start].born

    @property
    def wire(self) -> bytes | memoryview:
        if self._view is not None:
            return self._view
        if self._wire is None:
            self._wire = b"".join([frame.wire for frame in self.parts()])
        return self._wire

    def parts(self) -> Sequence[Frame]:
        return self._frames[self._start : self._stop]

    def __repr__(self) -> str:
        return f"EventBatch({self.parts()!r})"


class _Ping(Frame):
    """A WebSocket ping control frame (no payload) rather than a text frame."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(0, "")
        self._wire = b"\x89\x00"


PING = _Ping()


class FrameQueue:
    """A bounded FIFO of frames, lighter than asyncio.Queue (which holds four deques and
    an Event): it exists once per open socket, and its reader (the socket's outbox) takes
    frames without waiting, when told they are there."""

    __slots__ = ("_frames", "_limit")

    # An empty deque already holds a 64-slot block: idle sockets, the most numerous
    # kind, share this one until their first frame.
    _NO_FRAMES: deque[Frame] = deque(maxlen=0)

    def __init__(self, limit: int) -> None:
        self._frames = self._NO_FRAMES
        self._limit = limit

    def put_nowait(self, frame: Frame) -> bool:
        """Append a frame; False (and nothing appended) when the queue is full."""
        if len(self._frames) >= self._limit:
            return False
        if self._frames is self._NO_FRAMES:
            self._frames = deque()
        self._frames.append(frame)
        return True

    def get_nowait(self) -> Frame:
        frame = self._frames.popleft()
        if not self._frames:
            self._frames = self._NO_FRAMES  # a drained socket goes back to holding none
        return frame

    def empty(self) -> bool:
        return not self._frames

    def qsize(self) -> int:
        return len(self._frames)
