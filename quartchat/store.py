"""Message persistence: group commit per room, idempotent ids, and history queries.

Messages submitted for a room queue up behind that room's single writer task, which
stores everything waiting in one transaction and only then publishes it, in `seq`
order. A burst of senders therefore costs one commit, every message is stored before
anyone sees it, and no two messages of a room are ever published out of order.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from .models import Message, Room
from .wire import ChatMessage, utc_now

_ONE_MICROSECOND = timedelta(microseconds=1)
_COMMIT_ATTEMPTS = 3
_ROW_FIELDS = ("id", "room_id", "user_id", "user__username", "content", "created_at", "seq")


@dataclass(frozen=True, slots=True)
class Draft:
    """A message a client asked to post. `client_id` is true when the client chose `id`."""

    id: UUID
    room_id: str
    user_id: str
    username: str
    content: str
    client_id: bool = False


class Outcome(enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # the same id was already stored in this room by this user
    CONFLICT = "conflict"  # the id is taken by another room's or user's message


@dataclass(frozen=True, slots=True)
class Stored:
    outcome: Outcome
    message: ChatMessage


def _message_from_row(row: dict[str, Any]) -> ChatMessage:
    return ChatMessage(
        id=row["id"] if isinstance(row["id"], UUID) else UUID(str(row["id"])),
        room_id=row["room_id"],
        user_id=row["user_id"],
        username=row["user__username"],
        content=row["content"],
        created_at=row["created_at"],
        seq=row["seq"],
    )


class MessageStore:
    """Stores messages and hands each newly stored one to `publish`, in room order."""

    def __init__(self, publish: Callable[[ChatMessage], None]) -> None:
        self._publish = publish
        self._pending: dict[str, list[tuple[Draft, asyncio.Future[Stored]]]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    def submit(self, draft: Draft) -> asyncio.Future[Stored]:
        """Queue `draft` for its room's writer; the future resolves once it is committed.

        The message is stored even if nobody awaits the future any more.
        """
        accepted: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(draft.room_id, []).append((draft, accepted))
        if draft.room_id not in self._writers:
            self._writers[draft.room_id] = asyncio.create_task(self._write_room(draft.room_id))
        return accepted

    async def drain(self) -> None:
        """Wait until every submitted message is committed and published (shutdown)."""
        while self._writers:
            await asyncio.gather(*self._writers.values(), return_exceptions=True)

    @property
    def writer_count(self) -> int:
        return len(self._writers)

    async def history(
        self,
        room_id: str,
        *,
        since: datetime | None = None,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> list[ChatMessage]:
        """Messages oldest first: after a timestamp, after a seq, or else the latest `limit`."""
        query = Message.filter(room_id=room_id)
        if since is not None:
            query = query.filter(created_at__gt=since).order_by("seq")
        elif after_seq is not None:
            query = query.filter(seq__gt=after_seq).order_by("seq")
        else:
            query = query.order_by("-seq")
        rows = await query.limit(limit).values(*_ROW_FIELDS)
        messages = [_message_from_row(row) for row in rows]
        if since is None and after_seq is None:
            messages.reverse()
        return messages

    async def last_seq(self, room_id: str) -> int:
        """The room's newest seq (0 for a room without messages or without a row)."""
        seqs: list[int] = await Room.filter(id=room_id).values_list("last_seq", flat=True)  # type: ignore[assignment]
        return seqs[0] if seqs else 0

    async def seq_of(self, room_id: str, message_id: UUID) -> int | None:
        """The room sequence number of a message, or None if the room has no such message."""
        seqs: list[int] = await Message.filter(id=message_id, room_id=room_id).values_list(
            "seq", flat=True
        )  # type: ignore[assignment]
        return seqs[0] if seqs else None

    async def _write_room(self, room_id: str) -> None:
        try:
            while batch := self._pending.pop(room_id, None):
                try:
                    results = await self._commit_with_retry(room_id, [draft for draft, _ in batch])
                except Exception as error:
                    for _, accepted in batch:
                        if not accepted.done():
                            accepted.set_exception(error)
                    continue
                for (_, accepted), stored in zip(batch, results, strict=True):
                    if stored.outcome is Outcome.CREATED:
                        self._publish(stored.message)
                    if not accepted.done():
                        accepted.set_result(stored)
        finally:
            del self._writers[room_id]

    async def _commit_with_retry(self, room_id: str, drafts: Sequence[Draft]) -> list[Stored]:
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                return await self._commit(room_id, drafts)
            except IntegrityError:
                # Another instance stored one of these client-chosen ids between our
                # duplicate check and our insert; the next attempt sees it as stored.
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _commit(self, room_id: str, drafts: Sequence[Draft]) -> list[Stored]:
        async with in_transaction() as connection:
            already: dict[UUID, ChatMessage] = {}
            client_ids = [draft.id for draft in drafts if draft.client_id]
            if client_ids:
                rows = await (
                    Message.filter(id__in=client_ids).using_db(connection).values(*_ROW_FIELDS)
                )
                already = {message.id: message for message in map(_message_from_row, rows)}

            room = await Room.filter(id=room_id).using_db(connection).select_for_update().get()
            seq, moment = room.last_seq, room.last_message_at
            results: list[Stored] = []
            new_rows: list[Message] = []
            for draft in drafts:
                if draft.id in already:
                    results.append(_stored_again(draft, already[draft.id]))
                    continue
                now = utc_now()
                # Strictly increasing per room, so `?since=<last timestamp>` never skips one.
                moment = now if moment is None or now > moment else moment + _ONE_MICROSECOND
                seq += 1
                message = ChatMessage(
                    id=draft.id,
                    room_id=room_id,
                    user_id=draft.user_id,
                    username=draft.username,
                    content=draft.content,
                    created_at=moment,
                    seq=seq,
                )
                already[draft.id] = message
                results.append(Stored(Outcome.CREATED, message))
                new_rows.append(
                    Message(
                        id=draft.id,
                        room_id=room_id,
                        user_id=draft.user_id,
                        content=draft.content,
                        created_at=moment,
                        seq=seq,
                    )
                )
            if new_rows:
                await Message.bulk_create(new_rows, using_db=connection)
                await (
                    Room.filter(id=room_id)
                    .using_db(connection)
                    .update(last_seq=seq, last_message_at=moment)
                )
            return results


def _stored_again(draft: Draft, existing: ChatMessage) -> Stored:
    if existing.room_id == draft.room_id and existing.user_id == draft.user_id:
        return Stored(Outcome.DUPLICATE, existing)
    return Stored(Outcome.CONFLICT, existing)
