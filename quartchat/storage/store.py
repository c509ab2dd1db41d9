"""Message persistence: group commit, idempotent ids, and history queries.

Submitted messages queue up behind a single writer task, which stores everything
waiting (of every room) in one transaction and only then publishes it, each room in
`seq` order. A burst of senders therefore costs one commit, every message is stored
before anyone sees it, and no two messages of a room are ever published out of order.
While messages keep coming to this process (the last one came within `commit_window`
of the one before), the writer waits up to one window before a commit that would hold
few of them, so that the ones arriving meanwhile share it: a commit costs the database
thread or server far more than a message in it, and a room's messages committed
together also leave in one write per socket. The wait ends early once enough messages
wait, or when the server drains at shutdown; a quiet server commits each message at once.
One sender's message that the database refuses costs the others nothing: a batch that
fails for anything but an outage is split until only the drafts at fault fail.
A PostgreSQL commit that has no answer within `commit_timeout` fails its batch as an
outage: a link that silently drops packets would otherwise hold the writer, and every
sender behind it, until TCP gives up (minutes), while each sender can be told at once to
send again with the same id.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from tortoise import connections
from tortoise.exceptions import IntegrityError

from quartchat.storage import db
from quartchat.storage.commit import Draft, Outcome, Stored, commit, message_from_row
from quartchat.storage.faults import describe, is_outage
from quartchat.storage.models import Message, Room
from quartchat.wire.errors import ChatError
from quartchat.wire.payloads import ChatMessage

__all__ = ["Draft", "DraftRejectedError", "MessageStore", "Outcome", "Stored"]

log = logging.getLogger(__name__)

_COMMIT_ATTEMPTS = 3
# How long a failed batch waits to learn whether the database still answers at all.
_PROBE_TIMEOUT = 2.0
# Rooms read with one query at most (the query's IN list).
_READ_BATCH = 1000
# A batch this large commits at once (or ends the window's wait): the window would only
# delay it.
_FULL_ENOUGH = 16
# Drafts per transaction at most: a flood of senders (each within its own limits) then
# makes several commits, each published as soon as it is stored, rather than one that
# holds every sender in it until the last row is written.
_MAX_BATCH = 1000
# History pages in plain SQL, in the column order of commit.message_from_row: read
# through the ORM, a page of 500 cost 30 ms of the event loop's CPU converting values.
_SELECT = (
    "SELECT m.id, m.room_id, m.user_id, u.username, m.content, m.created_at, m.seq "
    "FROM messages m JOIN users u ON u.id = m.user_id "
)
_FORWARD = _SELECT + "WHERE m.room_id = {} AND m.seq > {} ORDER BY m.seq LIMIT {}"
_BACKWARD = _SELECT + "WHERE m.room_id = {} AND m.seq < {} ORDER BY m.seq DESC LIMIT {}"
_NO_SEQ_LIMIT = 2**63 - 1


class DraftRejectedError(ChatError):
    """The database refused this one message while storing the others of its batch."""

    def __init__(self) -> None:
        super().__init__("MESSAGE_REJECTED", "the database refused this message; it was not stored")


async def _database_answers() -> bool:
    try:
        await asyncio.wait_for(db.ping(), _PROBE_TIMEOUT)
    except Exception:
        return False
    return True


class CommitTimeoutError(TimeoutError):
    """The database did not answer a commit in time (an outage: a 503 or UNAVAILABLE)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer to a commit within {seconds:g} s (DB_COMMIT_TIMEOUT)")


def _fail(batch: list[tuple[Draft, asyncio.Future[Stored]]], error: Exception) -> None:
    for _, accepted in batch:
        if not accepted.done():
            accepted.set_exception(error)


class MessageStore:
    """Stores messages and hands each newly stored one to `publish`, in room order."""

    def __init__(
        self,
        publish: Callable[[ChatMessage], None],
        *,
        commit_window: float = 0.0,
        commit_timeout: float = math.inf,
    ) -> None:
        self._publish = publish
        self._window = commit_window
        self._commit_timeout = commit_timeout
        # Commits given up on, still ending (their rollback waits for the connection).
        self._abandoned: set[asyncio.Task[list[Stored]]] = set()
        self._pending: list[tuple[Draft, asyncio.Future[Stored]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_submit = -math.inf
        self._busy = False  # the last message came within a window of the one before
        self._waiting: asyncio.Future[None] | None = None  # the writer's window, if open
        self._draining = False
        self.commits = 0  # transactions that stored messages (metrics)

    def submit(self, draft: Draft) -> asyncio.Future[Stored]:
        """Queue `draft` for the writer; the future resolves once it is committed.

        The message is stored even if nobody awaits the future any more.
        """
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[Stored] = loop.create_future()
        now = loop.time()
        self._busy = now - self._last_submit < self._window
        self._last_submit = now
        self._pending.append((draft, accepted))
        if len(self._pending) >= _FULL_ENOUGH:
            self._end_window()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return accepted

    async def drain(self) -> None:
        """Wait until every submitted message is committed and published (shutdown);
        from now on no commit waits for a window."""
        self._draining = True
        self._end_window()
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
        if since is not None:
            first = await self.first_seq_after(room_id, since)
            if first is None:
                return []
            after_seq = first - 1
        if after_seq is not None:
            query, bound = _FORWARD, after_seq
        else:
            query, bound = _BACKWARD, _NO_SEQ_LIMIT if before_seq is None else before_seq
        client = connections.get("default")
        marks = ("?", "?", "?") if client.capabilities.dialect == "sqlite" else ("$1", "$2", "$3")
        _, rows = await client.execute_query(query.format(*marks), [room_id, bound, limit])
        messages = [message_from_row(tuple(row)) for row in rows]
        if after_seq is None:
            messages.reverse()
        return messages

    async def first_seq_after(self, room_id: str, since: datetime) -> int | None:
        """The seq of the room's first message stored after `since` (None: none was).

        One step down the (room_id, created_at) index: timestamps strictly increase with
        seq in a room (commit.py), so the messages after `since` are exactly those from
        this seq on, and are then read along (room_id, seq). Filtering on created_at and
        ordering by seq instead made SQLite sort every message after `since`: an old
        `since` cost a sort of the room's whole history (190 ms at 200,000 messages)."""
        seqs: list[int] = await (
            Message.filter(room_id=room_id, created_at__gt=since)
            .order_by("created_at")
            .limit(1)
            .values_list("seq", flat=True)
        )  # type: ignore[assignment]
        return seqs[0] if seqs else None

    async def last_seq(self, room_id: str) -> int:
        """The room's newest seq (0 for a room without messages or without a row)."""
        return (await self.last_seqs([room_id])).get(room_id, 0)

    async def last_seqs(self, room_ids: Sequence[str]) -> dict[str, int]:
        """The newest seq of each of these rooms that has a row."""
        found: dict[str, int] = {}
        # A few IN lists of bounded length: every room with a local socket is asked at
        # each resync, and one list past 32767 ids is refused by PostgreSQL's driver.
        for start in range(0, len(room_ids), _READ_BATCH):
            batch = list(room_ids[start : start + _READ_BATCH])
            rows = await Room.filter(id__in=batch).values_list("id", "last_seq")
            found.update((room_id, last_seq) for room_id, last_seq in rows)
        return found

    async def seq_of(self, room_id: str, message_id: UUID) -> int | None:
        """The room sequence number of a message, or None if the room has no such message."""
        seqs: list[int] = await Message.filter(id=message_id, room_id=room_id).values_list(
            "seq", flat=True
        )  # type: ignore[assignment]
        return seqs[0] if seqs else None

    async def _write(self) -> None:
        try:
            while self._pending:
                if self._busy and not self._draining and len(self._pending) < _FULL_ENOUGH:
                    await self._wait_window()
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                await self._commit_batch(batch)
        finally:
            self._writer = None

    async def _wait_window(self) -> None:
        loop = asyncio.get_running_loop()
        self._waiting = loop.create_future()
        timer = loop.call_later(self._window, self._end_window)
        try:
            await self._waiting
        finally:
            timer.cancel()
            self._waiting = None

    def _end_window(self) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)

    async def _commit_batch(
        self, batch: list[tuple[Draft, asyncio.Future[Stored]]], *, probe: bool = True
    ) -> None:
        """Commit a batch in one transaction. If that fails for anything but an outage,
        commit its rooms apart, then each half of a room's drafts, down to single
        drafts: only the drafts at fault fail, each reported to its own sender."""
        try:
            results = await self._commit_with_retry([draft for draft, _ in batch])
        except Exception as error:
            if is_outage(error) or (probe and not await _database_answers()):
                _fail(batch, error)
                return
            if len(batch) == 1:
                draft = batch[0][0]
                log.error(
                    "message %s refused by the database: %s",
                    draft.id,
                    describe(error),
                    extra={
                        "error_code": "MESSAGE_REJECTED",
                        "room_id": draft.room_id,
                        "user_id": draft.user_id,
                    },
                )
                _fail(batch, DraftRejectedError())
                return
            rooms = list(dict.fromkeys(draft.room_id for draft, _ in batch))
            if len(rooms) > 1:
                parts = [[item for item in batch if item[0].room_id == room] for room in rooms]
            else:
                middle = len(batch) // 2
                parts = [batch[:middle], batch[middle:]]
            for part in parts:  # in order, so each room's messages are published in order
                await self._commit_batch(part, probe=False)
            return
        if any(stored.outcome is Outcome.CREATED for stored in results):
            self.commits += 1  # resends of stored ids alone do not count
        log.debug("committed a batch of %d drafts", len(batch))
        for (_, accepted), stored in zip(batch, results, strict=True):
            if stored.outcome is Outcome.CREATED:
                self._publish(stored.message)
            if not accepted.done():
                accepted.set_result(stored)

    async def _commit_with_retry(self, drafts: Sequence[Draft]) -> list[Stored]:
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                return await self._commit_within_timeout(drafts)
            except IntegrityError:
                # Another instance stored one of these client-chosen ids between our
                # duplicate check and our insert; the next attempt sees it as stored.
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _commit_within_timeout(self, drafts: Sequence[Draft]) -> list[Stored]:
        """`commit(drafts)`, given up after `commit_timeout` on PostgreSQL. SQLite's
        commit runs on a local file and cannot be abandoned halfway (its thread goes on),
        so it is always awaited."""
        if not math.isfinite(self._commit_timeout) or not db.is_remote():
            return await commit(drafts)
        attempt = asyncio.ensure_future(commit(drafts))
        try:
            return await asyncio.wait_for(asyncio.shield(attempt), self._commit_timeout)
        except TimeoutError:
            # Cancelling rolls the transaction back; that rollback may itself wait for
            # the lost link, so it finishes in the background, holding its connection.
            attempt.cancel()
            self._abandoned.add(attempt)
            attempt.add_done_callback(self._forget)
            raise CommitTimeoutError(self._commit_timeout) from None

    def _forget(self, attempt: asyncio.Task[list[Stored]]) -> None:
        self._abandoned.discard(attempt)
        if not attempt.cancelled() and attempt.exception() is None:
            # Its COMMIT was on the wire when it was given up: the messages are stored,
            # and the relay's gap-fill delivers them from the database.
            log.warning("a commit given up after %.1f s was stored after all", self._commit_timeout)
