"""Message persistence: group commit, idempotent ids, and history queries.

Submitted messages queue up behind a single writer task, which stores everything
waiting (of every room) in one transaction and only then publishes it, each room in
`seq` order. A burst of senders therefore costs one commit, every message is stored
before anyone sees it, and no two messages of a room are ever published out of order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from tortoise.exceptions import IntegrityError

from .commit import Draft, Outcome, Stored, commit, message_from_row
from .models import Message, Room
from .wire import ChatMessage

__all__ = ["Draft", "MessageStore", "Outcome", "Stored"]

_COMMIT_ATTEMPTS = 3
# The column order of commit.message_from_row.
_ROW_FIELDS = ("id", "room_id", "user_id", "user__username", "content", "created_at", "seq")


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
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[ChatMessage]:
        """Messages oldest first: after a timestamp, after a seq, else the latest `limit`
        (of those before `before_seq`, when given)."""
        query = Message.filter(room_id=room_id)
        forward = since is not None or after_seq is not None
        if since is not None:
            query = query.filter(created_at__gt=since).order_by("seq")
        elif after_seq is not None:
            query = query.filter(seq__gt=after_seq).order_by("seq")
        else:
            if before_seq is not None:
                query = query.filter(seq__lt=before_seq)
            query = query.order_by("-seq")
        rows = await query.limit(limit).values_list(*_ROW_FIELDS)
        messages = [message_from_row(row) for row in rows]
        if not forward:
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
                return await commit(drafts)
            except IntegrityError:
                # Another instance stored one of these client-chosen ids between our
                # duplicate check and our insert; the next attempt sees it as stored.
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
