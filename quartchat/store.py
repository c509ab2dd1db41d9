"""Message persistence: group commit, idempotent ids, and history queries.

Submitted messages queue up behind a single writer task, which stores everything
waiting (of every room) in one transaction and only then publishes it, each room in
`seq` order. A burst of senders therefore costs one commit, every message is stored
before anyone sees it, and no two messages of a room are ever published out of order.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.transactions import in_transaction

from .models import Message, Room
from .wire import ChatMessage, utc_now

_ONE_MICROSECOND = timedelta(microseconds=1)
_COMMIT_ATTEMPTS = 3
_MESSAGE_ID = Message._meta.fields_map["id"]
_CREATED_AT = Message._meta.fields_map["created_at"]
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
        self._pending: list[tuple[Draft, asyncio.Future[Stored]]] = []
        self._writer: asyncio.Task[None] | None = None

    def submit(self, draft: Draft) -> asyncio.Future[Stored]:
        """Queue `draft` for the writer; the future resolves once it is committed.

        The message is stored even if nobody awaits the future any more.
        """
        accepted: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, accepted))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return accepted

    async def drain(self) -> None:
        """Wait until every submitted message is committed and published (shutdown)."""
        while self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    @property
    def writer_count(self) -> int:
        return 0 if self._writer is None else 1

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

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._commit_batch(batch)
        finally:
            self._writer = None

    async def _commit_batch(self, batch: list[tuple[Draft, asyncio.Future[Stored]]]) -> None:
        """Commit a batch in one transaction; if that fails, room by room, so that one
        room's failure is reported to its senders only."""
        try:
            results = await self._commit_with_retry([draft for draft, _ in batch])
        except Exception as error:
            rooms = {draft.room_id for draft, _ in batch}
            if len(rooms) > 1:
                for room_id in rooms:
                    await self._commit_batch([item for item in batch if item[0].room_id == room_id])
                return
            for _, accepted in batch:
                if not accepted.done():
                    accepted.set_exception(error)
            return
        for (_, accepted), stored in zip(batch, results, strict=True):
            if stored.outcome is Outcome.CREATED:
                self._publish(stored.message)
            if not accepted.done():
                accepted.set_result(stored)

    async def _commit_with_retry(self, drafts: Sequence[Draft]) -> list[Stored]:
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                return await self._commit(drafts)
            except IntegrityError:
                # Another instance stored one of these client-chosen ids between our
                # duplicate check and our insert; the next attempt sees it as stored.
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _commit(self, drafts: Sequence[Draft]) -> list[Stored]:
        async with in_transaction() as connection:
            sql = _Sql(connection)
            already: dict[UUID, ChatMessage] = {}
            client_ids = [draft.id for draft in drafts if draft.client_id]
            if client_ids:
                rows = await (
                    Message.filter(id__in=client_ids).using_db(connection).values(*_ROW_FIELDS)
                )
                already = {message.id: message for message in map(_message_from_row, rows)}

            results: dict[int, Stored] = {}
            by_room: dict[str, list[int]] = {}
            for index, draft in enumerate(drafts):
                by_room.setdefault(draft.room_id, []).append(index)
            for room_id, indexes in by_room.items():
                seq, moment = await sql.lock_room(room_id)
                new_rows: list[list[Any]] = []
                for index in indexes:
                    draft = drafts[index]
                    if draft.id in already:
                        results[index] = _stored_again(draft, already[draft.id])
                        continue
                    now = utc_now()
                    # Strictly increasing per room: `?since=<last timestamp>` skips nothing.
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
                    results[index] = Stored(Outcome.CREATED, message)
                    new_rows.append(sql.message_row(message))
                if new_rows:
                    assert moment is not None
                    await sql.insert_messages(new_rows)
                    await sql.advance_room(room_id, seq, moment)
            return [results[index] for index in range(len(drafts))]


class _Sql:
    """The three statements of the write path, as plain SQL for SQLite or PostgreSQL:
    the ORM's per-statement overhead was most of a message's cost."""

    def __init__(self, connection: BaseDBAsyncClient) -> None:
        self._connection = connection
        postgres = connection.capabilities.dialect == "postgres"
        marks = [f"${n}" for n in range(1, 7)] if postgres else ["?"] * 6
        lock = " FOR UPDATE" if postgres else ""  # SQLite's write lock covers the database
        self._select_room = (
            f"SELECT last_seq, last_message_at FROM rooms WHERE id = {marks[0]}{lock}"
        )
        self._insert = (
            "INSERT INTO messages (id, room_id, user_id, content, created_at, seq) "
            f"VALUES ({', '.join(marks)})"
        )
        self._update_room = (
            f"UPDATE rooms SET last_seq = {marks[0]}, last_message_at = {marks[1]} "
            f"WHERE id = {marks[2]}"
        )

    async def lock_room(self, room_id: str) -> tuple[int, datetime | None]:
        """The room's last seq and message time, locked until the transaction ends."""
        _, rows = await self._connection.execute_query(self._select_room, [room_id])
        if not rows:
            raise DoesNotExist(f"room {room_id!r} does not exist")
        last_seq, last_at = rows[0][0], rows[0][1]
        return int(last_seq), _CREATED_AT.to_python_value(last_at)

    def message_row(self, message: ChatMessage) -> list[Any]:
        return [
            _MESSAGE_ID.to_db_value(message.id, Message),
            message.room_id,
            message.user_id,
            message.content,
            _CREATED_AT.to_db_value(message.created_at, Message),
            message.seq,
        ]

    async def insert_messages(self, rows: list[list[Any]]) -> None:
        await self._connection.execute_many(self._insert, rows)

    async def advance_room(self, room_id: str, seq: int, moment: datetime) -> None:
        await self._connection.execute_query(
            self._update_room, [seq, _CREATED_AT.to_db_value(moment, Room), room_id]
        )


def _stored_again(draft: Draft, existing: ChatMessage) -> Stored:
    if existing.room_id == draft.room_id and existing.user_id == draft.user_id:
        return Stored(Outcome.DUPLICATE, existing)
    return Stored(Outcome.CONFLICT, existing)
