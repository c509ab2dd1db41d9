"""The write path of the message store: a batch of drafts in one transaction.

Per batch: read the already-stored client ids (only when clients chose ids), lock the
batch's rooms' counter rows (in id order, so two instances never deadlock), give each
new message the next seq and a strictly increasing timestamp, insert, advance the
counters. That algorithm is written once, without I/O (`transaction`, a generator that
yields statements and is sent their rows, as python-websockets' protocol takes bytes and
hands bytes out); a `Dialect` supplies the SQL where SQLite and PostgreSQL differ, and
two small drivers run it. On SQLite the whole transaction runs in one call on
aiosqlite's thread, because each statement sent from the event loop costs a thread hop,
and those hops were most of a message's cost; on PostgreSQL it runs on Tortoise's
connection inside `in_transaction`. A PostgreSQL batch without client-chosen ids skips
it for one statement of its own (`_commit_postgres_new`: one round trip instead of five).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, cast
from uuid import UUID

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.transactions import in_transaction

from quartchat.internals.orm import column
from quartchat.internals.shortcuts import sqlite_thread
from quartchat.storage.models import Message
from quartchat.wire.payloads import ChatMessage, utc_now

_ONE_MICROSECOND = timedelta(microseconds=1)
_MESSAGE_ID = column(Message, "id")
_CREATED_AT = column(Message, "created_at")


@dataclass(frozen=True, slots=True)
class Draft:
    """A message a client asked to post. `client_id` is true when the client chose `id`."""

    id: UUID
    room_id: str
    user_id: str
    username: str
    content: str = field(repr=False)  # a draft in a debug line must not show it
    client_id: bool = False

    def stored_as(self, seq: int, created_at: datetime) -> ChatMessage:
        """The message this draft became, with the seq and time its commit gave it."""
        return ChatMessage(
            id=self.id,
            room_id=self.room_id,
            user_id=self.user_id,
            username=self.username,
            content=self.content,
            created_at=created_at,
            seq=seq,
        )


class Outcome(enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # the same id was already stored in this room by this user
    CONFLICT = "conflict"  # the id is taken by another room's or user's message


@dataclass(frozen=True, slots=True)
class Stored:
    outcome: Outcome
    message: ChatMessage


@dataclass(slots=True)
class _Plan:
    results: list[Stored] = field(default_factory=list)
    new: dict[str, list[ChatMessage]] = field(default_factory=dict)  # room -> messages
    counters: dict[str, tuple[int, datetime]] = field(default_factory=dict)


def _plan(
    drafts: Sequence[Draft],
    already: dict[UUID, ChatMessage],
    rooms: dict[str, tuple[int, datetime | None]],
) -> _Plan:
    plan = _Plan()
    counters: dict[str, tuple[int, datetime | None]] = dict(rooms)
    for draft in drafts:
        if draft.id in already:
            existing = already[draft.id]
            same = existing.room_id == draft.room_id and existing.user_id == draft.user_id
            outcome = Outcome.DUPLICATE if same else Outcome.CONFLICT
            plan.results.append(Stored(outcome, existing))
            continue
        if draft.room_id not in counters:
            raise DoesNotExist(f"room {draft.room_id!r} does not exist")
        seq, moment = counters[draft.room_id]
        now = utc_now()
        # Strictly increasing per room, so `?since=<last timestamp>` never skips one.
        moment = now if moment is None or now > moment else moment + _ONE_MICROSECOND
        message = draft.stored_as(seq + 1, moment)
        counters[draft.room_id] = (seq + 1, moment)
        plan.counters[draft.room_id] = (seq + 1, moment)
        already[draft.id] = message
        plan.new.setdefault(draft.room_id, []).append(message)
        plan.results.append(Stored(Outcome.CREATED, message))
    return plan


def _row(message: ChatMessage) -> list[Any]:
    return [
        _MESSAGE_ID.to_db_value(message.id, Message),
        message.room_id,
        message.user_id,
        message.content,
        _CREATED_AT.to_db_value(message.created_at, Message),
        message.seq,
    ]


def message_from_row(row: Sequence[Any]) -> ChatMessage:
    """A message from (id, room_id, user_id, username, content, created_at, seq)."""
    message_id, room_id, user_id, username, content, created_at, seq = row
    return ChatMessage(
        id=message_id if isinstance(message_id, UUID) else UUID(str(message_id)),
        room_id=room_id,
        user_id=user_id,
        username=username,
        content=content,
        created_at=db_datetime(created_at),
        seq=int(seq),
    )


def db_datetime(value: Any) -> datetime:
    """A timestamp column's value as read by plain SQL, as an aware UTC datetime."""
    # SQLite's text, as its adapter wrote it ("2026-01-01 12:00:00.123456+00:00"):
    # fromisoformat reads it ten times faster than the ORM's parser.
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    return _CREATED_AT.to_python_value(value)  # type: ignore[no-any-return]


class Statement(NamedTuple):  # a tuple: cheaper to build than a dataclass, four a batch
    """One step of a commit: SQL, its parameters, and whether it runs once per row of
    `params` (`many`, which returns no rows)."""

    sql: str
    params: list[Any]
    many: bool = False


Rows = Sequence[Sequence[Any]]
Transaction = Generator[Statement, Rows, list[Stored]]


class Dialect(Protocol):
    """The SQL a commit's steps differ by between SQLite and PostgreSQL."""

    def stored(self, client_ids: list[UUID]) -> Statement:
        """Messages already stored under these ids, as `message_from_row` reads them."""

    def lock_rooms(self, room_ids: list[str]) -> Statement:
        """(id, last_seq, last_message_at) of these rooms, locked until the commit ends."""

    def insert_messages(self, rows: list[list[Any]]) -> Statement:
        """Insert (id, room_id, user_id, content, created_at, seq) rows."""

    def advance_rooms(self, rows: list[list[Any]]) -> Statement:
        """Set (last_seq, last_message_at) of room `id` from (last_seq, moment, id) rows."""

    def read_moment(self, value: Any) -> datetime:
        """A room's `last_message_at` as `lock_rooms` read it (not NULL)."""


_SELECT_STORED = (
    "SELECT m.id, m.room_id, m.user_id, u.username, m.content, m.created_at, m.seq "
    "FROM messages m JOIN users u ON u.id = m.user_id WHERE m.id IN ({ids})"
)
_INSERT_MESSAGES = (
    "INSERT INTO messages (id, room_id, user_id, content, created_at, seq) "
    "VALUES ({}, {}, {}, {}, {}, {})"
)
_ADVANCE_ROOMS = "UPDATE rooms SET last_seq = {}, last_message_at = {} WHERE id = {}"


class SqliteDialect:
    """`?` placeholders and IN-lists. The rooms need no row lock: the driver's
    `BEGIN IMMEDIATE` already holds the database's one write lock."""

    _insert = _INSERT_MESSAGES.format(*"??????")
    _advance = _ADVANCE_ROOMS.format(*"???")

    def stored(self, client_ids: list[UUID]) -> Statement:
        marks = ", ".join("?" * len(client_ids))
        return Statement(_SELECT_STORED.format(ids=marks), [str(id_) for id_ in client_ids])

    def lock_rooms(self, room_ids: list[str]) -> Statement:
        marks = ", ".join("?" * len(room_ids))
        sql = f"SELECT id, last_seq, last_message_at FROM rooms WHERE id IN ({marks})"
        return Statement(sql, room_ids)

    def insert_messages(self, rows: list[list[Any]]) -> Statement:
        return Statement(self._insert, rows, many=True)

    def advance_rooms(self, rows: list[list[Any]]) -> Statement:
        return Statement(self._advance, rows, many=True)

    def read_moment(self, value: Any) -> datetime:
        return db_datetime(value)  # text, which fromisoformat reads faster than the ORM


class PostgresDialect:
    """`$n` placeholders; ids as one array parameter each, since a list of them would
    stop at 32767 parameters, and asyncpg's refusal looks like an outage, failing the
    whole batch of every sender. Rooms are locked `FOR UPDATE` in id order, so two
    instances never deadlock."""

    _stored = _SELECT_STORED.format(ids="SELECT unnest($1::uuid[])")
    _lock = (
        "SELECT id, last_seq, last_message_at FROM rooms WHERE id = ANY($1::text[]) "
        "ORDER BY id FOR UPDATE"
    )
    _insert = _INSERT_MESSAGES.format("$1", "$2", "$3", "$4", "$5", "$6")
    _advance = _ADVANCE_ROOMS.format("$1", "$2", "$3")

    def stored(self, client_ids: list[UUID]) -> Statement:
        return Statement(self._stored, [client_ids])

    def lock_rooms(self, room_ids: list[str]) -> Statement:
        return Statement(self._lock, [room_ids])

    def insert_messages(self, rows: list[list[Any]]) -> Statement:
        return Statement(self._insert, rows, many=True)

    def advance_rooms(self, rows: list[list[Any]]) -> Statement:
        return Statement(self._advance, rows, many=True)

    def read_moment(self, value: Any) -> datetime:
        # asyncpg's is an aware datetime already: converting it would cost a batch 1.5 µs
        return value if isinstance(value, datetime) else db_datetime(value)


def transaction(drafts: Sequence[Draft], dialect: Dialect) -> Transaction:
    """The group commit, without I/O: yields each statement, is sent its rows, and
    returns the results in the drafts' order. The caller runs it in one transaction."""
    already: dict[UUID, ChatMessage] = {}
    client_ids = [draft.id for draft in drafts if draft.client_id]
    if client_ids:
        for row in (yield dialect.stored(client_ids)):
            message = message_from_row(row)
            already[message.id] = message
    locked = yield dialect.lock_rooms(sorted({draft.room_id for draft in drafts}))
    rooms = {
        room_id: (int(last_seq), None if moment is None else dialect.read_moment(moment))
        for room_id, last_seq, moment in locked
    }
    plan = _plan(drafts, already, rooms)
    if plan.new:
        yield dialect.insert_messages(
            [_row(message) for messages in plan.new.values() for message in messages]
        )
        yield dialect.advance_rooms(
            [[seq, moment, room_id] for room_id, (seq, moment) in plan.counters.items()]
        )
    return plan.results


SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()


async def commit(drafts: Sequence[Draft]) -> list[Stored]:
    """Store the drafts in one transaction; results in the drafts' order."""
    client = connections.get("default")
    if client.capabilities.dialect == "sqlite":
        async with client.acquire_connection() as aio:
            run, raw = sqlite_thread(aio)
            try:
                results: list[Stored] = await run(_run_on_sqlite, raw, drafts)
            except sqlite3.IntegrityError as error:
                raise IntegrityError(str(error)) from error
            return results
    if any(draft.client_id for draft in drafts):
        async with in_transaction() as connection:
            return await _run_on_postgres(connection, transaction(drafts, POSTGRES))
    return await _commit_postgres_new(client, drafts)


def _run_on_sqlite(connection: sqlite3.Connection, drafts: Sequence[Draft]) -> list[Stored]:
    """The transaction on aiosqlite's thread: one thread hop for the whole batch."""
    steps = transaction(drafts, SQLITE)
    # The database's write lock before the first read, so no other writer can make
    # what this batch reads (stored ids, counters) stale before it writes.
    connection.execute("BEGIN IMMEDIATE")
    try:
        statement = next(steps)
        while True:
            if statement.many:
                connection.executemany(statement.sql, statement.params)
                rows: Rows = ()
            else:
                rows = connection.execute(statement.sql, statement.params).fetchall()
            try:
                statement = steps.send(rows)
            except StopIteration as done:
                results: list[Stored] = done.value
                break
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return results


async def _run_on_postgres(connection: BaseDBAsyncClient, steps: Transaction) -> list[Stored]:
    """The transaction on the connection `in_transaction` gave."""
    statement = next(steps)
    while True:
        if statement.many:
            await connection.execute_many(statement.sql, statement.params)
            rows: Rows = ()
        else:
            _, found = await connection.execute_query(statement.sql, statement.params)
            if found and isinstance(found[0], dict):  # what Tortoise's hint says
                rows = [tuple(row.values()) for row in found]
            else:  # asyncpg's records, which read by position as they are
                rows = cast(Rows, found)
        try:
            statement = steps.send(rows)
        except StopIteration as done:
            results: list[Stored] = done.value
            return results


# One statement, so one implicit transaction: lock the batch's rooms in id order, advance
# their counters by each room's count, and insert the messages with the seqs and
# timestamps that follow (the same ones `_plan` gives: strictly increasing per room,
# the first no earlier than `now`). If a room does not exist, nothing is written.
_INSERT_NEW = """
WITH locked AS (
    SELECT id, last_seq, last_message_at FROM rooms
    WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
), counted AS (
    UPDATE rooms AS r
    SET last_seq = l.last_seq + d.n,
        last_message_at = greatest(
            $3::timestamptz + (d.n - 1) * interval '1 microsecond',
            l.last_message_at + d.n * interval '1 microsecond')
    FROM locked AS l JOIN unnest($1::text[], $2::int[]) AS d(id, n) ON d.id = l.id
    WHERE r.id = l.id AND (SELECT count(*) FROM locked) = cardinality($1::text[])
    RETURNING r.id, r.last_seq, r.last_message_at, d.n
)
INSERT INTO messages (id, room_id, user_id, content, created_at, seq)
SELECT m.id, m.room_id, m.user_id, m.content,
       c.last_message_at - (c.n - m.k) * interval '1 microsecond',
       c.last_seq - c.n + m.k
FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[])
    AS m(id, room_id, user_id, content, k)
JOIN counted AS c ON c.id = m.room_id
RETURNING id, created_at, seq
"""


async def _commit_postgres_new(client: BaseDBAsyncClient, drafts: Sequence[Draft]) -> list[Stored]:
    """Store drafts whose ids the server chose (so none can be stored already) in one
    statement: an optimisation of `transaction` for PostgreSQL, with SQL of its own that
    gives the same seqs and timestamps, one round trip instead of five."""
    per_room: dict[str, int] = {}
    positions = []
    for draft in drafts:
        per_room[draft.room_id] = per_room.get(draft.room_id, 0) + 1
        positions.append(per_room[draft.room_id])
    _, rows = await client.execute_query(
        _INSERT_NEW,
        [
            list(per_room),
            list(per_room.values()),
            utc_now(),
            [draft.id for draft in drafts],
            [draft.room_id for draft in drafts],
            [draft.user_id for draft in drafts],
            [draft.content for draft in drafts],
            positions,
        ],
    )
    stored = {row["id"]: (row["created_at"], row["seq"]) for row in rows}
    results = []
    for draft in drafts:
        if draft.id not in stored:
            raise DoesNotExist(f"room {draft.room_id!r} does not exist")
        created_at, seq = stored[draft.id]
        message = draft.stored_as(int(seq), _CREATED_AT.to_python_value(created_at))
        results.append(Stored(Outcome.CREATED, message))
    return results
