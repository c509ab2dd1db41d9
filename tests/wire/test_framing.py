"""Server frames as bytes: encoded once, batched, pinged, and queued per socket."""

from __future__ import annotations

from quartchat.wire.framing import PING, EventBatch, Frame, FrameQueue


def test_frame_wire_is_a_complete_unmasked_text_frame() -> None:
    for size in (0, 125, 126, 65535, 65536, 70000):
        text = "x" * size
        wire = Frame(0, text).wire
        assert wire[0] == 0x81  # FIN + text
        length = wire[1]
        offset = 2
        if length == 126:
            length, offset = int.from_bytes(wire[2:4], "big"), 4
        elif length == 127:
            length, offset = int.from_bytes(wire[2:10], "big"), 10
        assert length == size
        assert wire[offset:] == text.encode()


def test_an_event_batch_is_its_events_written_back_to_back() -> None:
    frames = [Frame(0, f'{{"n":{i}}}') for i in range(4)]
    batch = EventBatch(frames, 1, 3)
    assert list(batch.parts()) == frames[1:3]
    assert bytes(batch.wire) == bytes(frames[1].wire) + bytes(frames[2].wire)


def test_ping_is_an_empty_ping_control_frame() -> None:
    assert bytes(PING.wire) == b"\x89\x00"


def test_a_frame_queue_is_bounded_first_in_first_out() -> None:
    queue = FrameQueue(2)
    assert queue.empty()
    first, second, third = Frame(1, "a"), Frame(2, "b"), Frame(3, "c")
    assert queue.put_nowait(first)
    assert queue.get_nowait() is first
    assert queue.put_nowait(second) and queue.put_nowait(third)
    assert not queue.put_nowait(Frame(4, "d"))  # full: refused, not dropped silently
    assert queue.qsize() == 2
    assert [queue.get_nowait(), queue.get_nowait()] == [second, third]
    assert queue.empty()
