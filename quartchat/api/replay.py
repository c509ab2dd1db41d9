"""Where a read of a room's messages starts: `since`, `after` or `before`.

`GET /rooms/{id}/messages` takes at most one of the three; a socket's `?since=` or
`?after=` says where its replay starts. Both read them here, so the same mistake gets
the same code on both: `INVALID_SINCE`, `INVALID_AFTER`, `INVALID_BEFORE`, and
`INVALID_REPLAY` when more than one was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from uuid import UUID

from quartchat.wire.errors import ChatError
from quartchat.wire.payloads import parse_timestamp

if TYPE_CHECKING:
    from quartchat.storage.store import MessageStore


@dataclass(frozen=True, slots=True)
class Replay:
    """Where a reconnecting client's replay starts: after a timestamp or after a seq."""

    since: datetime | None = None
    after_seq: int = 0


def require_one_point(**points: str | None) -> None:
    """INVALID_REPLAY unless at most one of the named starting points was given."""
    given = [name for name, value in points.items() if value is not None]
    if len(given) > 1:
        raise ChatError(
            "INVALID_REPLAY", f"use one of {', '.join(points)}, not {' and '.join(given)}"
        )


def parse_since(raw: str) -> datetime:
    """`since=` as an aware UTC datetime, or INVALID_SINCE."""
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise ChatError(
            "INVALID_SINCE", f"since={raw!r} is not an ISO 8601 timestamp of years 1-9999"
        ) from None


async def seq_of(
    store: MessageStore, room_id: str, raw: str, parameter: Literal["after", "before"]
) -> int:
    """The seq of message `raw` in the room, or INVALID_AFTER / INVALID_BEFORE."""
    code = f"INVALID_{parameter.upper()}"
    try:
        message_id = UUID(raw)
    except ValueError:
        raise ChatError(code, f"{parameter}={raw!r} is not a message id") from None
    seq = await store.seq_of(room_id, message_id)
    if seq is None:
        raise ChatError(code, f"room {room_id!r} has no message {raw}")
    return seq


async def read_replay(
    store: MessageStore, room_id: str, since: str | None, after: str | None
) -> Replay | None:
    """A socket's `?since=` / `?after=` as its replay point (None: no replay)."""
    require_one_point(since=since, after=after)
    if since is not None:
        return Replay(since=parse_since(since))
    if after is not None:
        return Replay(after_seq=await seq_of(store, room_id, after, "after"))
    return None
