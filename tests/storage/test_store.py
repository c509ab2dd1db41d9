"""The message store against a real SQLite database: group commit, seq, idempotency (and
PostgreSQL, whose driver refuses statements of over 32767 parameters)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quartchat.storage import db
from quartchat.storage.models import Room, User
from quartchat.storage.store import Draft, MessageStore, Outcome
from quartchat.wire.payloads import ChatMessage
from tests.support import run_script
from tests.support.timing import within


@pytest.fixture(name="database")
async def _database(tmp_path: Path) -> AsyncIterator[None]:
    await db.connect(f"sqlite://{tmp_path / 'store.sqlite3'}")
    await Room.create(id="room", name="Room")
    await Room.create(id="other", name="Other")
    await User.create(id="user", username="User")
    yield
    await db.disconnect()


def draft(content: str, room: str = "room", message_id: uuid.UUID | None = None) -> Draft:
    return Draft(
        id=message_id or uuid.uuid4(),
        room_id=room,
        user_id="user",
        username="User",
        content=content,
        client_id=message_id is not None,
    )


@pytest.mark.usefixtures("database")
async def test_burst_is_stored_in_order_and_published_after_commit() -> None:
    published: list[ChatMessage] = []
    store = MessageStore(published.append)
    results = await asyncio.gather(*(store.submit(draft(f"m{i}")) for i in range(100)))
    assert [r.message.seq for r in results] == list(range(1, 101))
    assert [m.content for m in published] == [f"m{i}" for i in range(100)]
    stamps = [m.created_at for m in published]
    assert stamps == sorted(stamps) and len(set(stamps)) == 100
    assert await store.history("room", limit=500) == published
    assert store.writer_count == 0


@pytest.mark.usefixtures("database")
async def test_messages_coming_within_the_window_share_one_commit() -> None:
    published: list[ChatMessage] = []
    store = MessageStore(published.append, commit_window=0.3)
    loop = asyncio.get_running_loop()
    await store.submit(draft("m0"))  # nothing came before it: committed at once
    started = loop.time()
    second = store.submit(draft("m1"))  # within a window of m0: the writer waits one
    await asyncio.sleep(0.05)
    third = store.submit(draft("m2"))
    stored = await asyncio.gather(second, third)
    assert loop.time() - started >= 0.29
    assert store.commits == 2
    assert [result.message.seq for result in stored] == [2, 3]
    assert [message.content for message in published] == ["m0", "m1", "m2"]


@pytest.mark.usefixtures("database")
async def test_a_message_after_a_quiet_spell_is_committed_at_once() -> None:
    store = MessageStore(lambda message: None, commit_window=0.5)
    loop = asyncio.get_running_loop()
    for i in range(3):
        started = loop.time()
        await store.submit(draft(f"q{i}"))
        # The window waited would be the whole 0.5 s.
        within(loop.time() - started, 0.5, f"a message after a quiet spell ({i})")
        await asyncio.sleep(0.6)
    assert store.commits == 3


@pytest.mark.usefixtures("database")
async def test_a_full_batch_does_not_wait_for_the_window() -> None:
    store = MessageStore(lambda message: None, commit_window=2.0)
    loop = asyncio.get_running_loop()
    await store.submit(draft("first"))
    started = loop.time()
    await asyncio.gather(*(store.submit(draft(f"m{i}")) for i in range(40)))
    within(loop.time() - started, 1.5, "a full batch (the window: 2 s)")
    assert store.commits == 2


@pytest.mark.usefixtures("database")
async def test_a_window_already_waited_ends_once_enough_messages_wait() -> None:
    store = MessageStore(lambda message: None, commit_window=2.0)
    loop = asyncio.get_running_loop()
    await store.submit(draft("first"))
    started = loop.time()
    waiting = store.submit(draft("busy"))  # right after "first": the writer waits
    await asyncio.sleep(0.1)
    more = [store.submit(draft(f"m{i}")) for i in range(20)]
    await asyncio.gather(waiting, *more)
    within(loop.time() - started, 1.5, "a window ended by the messages waiting (2 s)")
    assert store.commits == 2


@pytest.mark.usefixtures("database")
async def test_draining_ends_the_window_and_stores_what_waited() -> None:
    published: list[ChatMessage] = []
    store = MessageStore(published.append, commit_window=5.0)
    loop = asyncio.get_running_loop()
    await store.submit(draft("first"))
    waiting = store.submit(draft("last"))
    await asyncio.sleep(0.1)
    started = loop.time()
    await store.drain()
    within(loop.time() - started, 3.0, "a drain during a window (5 s)")
    assert waiting.done() and waiting.result().message.seq == 2
    assert [message.content for message in published] == ["first", "last"]


@pytest.mark.usefixtures("database")
async def test_a_commit_of_resent_ids_alone_is_not_counted() -> None:
    store = MessageStore(lambda message: None)
    message_id = uuid.uuid4()
    assert (await store.submit(draft("once", message_id=message_id))).outcome is Outcome.CREATED
    again = await store.submit(draft("once", message_id=message_id))
    assert again.outcome is Outcome.DUPLICATE
    assert store.commits == 1


@pytest.mark.usefixtures("database")
async def test_a_flood_is_committed_a_thousand_drafts_at_a_time_in_order() -> None:
    published: list[ChatMessage] = []
    store = MessageStore(published.append)
    results = await asyncio.gather(*(store.submit(draft(f"m{i}")) for i in range(2500)))
    assert store.commits == 3
    assert [result.message.seq for result in results] == list(range(1, 2501))
    assert [message.content for message in published] == [f"m{i}" for i in range(2500)]


@pytest.mark.usefixtures("database")
async def test_history_windows() -> None:
    store = MessageStore(lambda message: None)
    messages = [(await store.submit(draft(f"m{i}"))).message for i in range(5)]
    assert await store.history("room", limit=2) == messages[-2:]
    assert await store.history("room", after_seq=3) == messages[3:]
    assert await store.history("room", since=messages[0].created_at, limit=2) == messages[1:3]
    assert await store.seq_of("room", messages[2].id) == 3
    assert await store.seq_of("other", messages[2].id) is None


@pytest.mark.usefixtures("database")
async def test_last_seqs_of_rooms_with_without_and_missing_rows() -> None:
    store = MessageStore(lambda message: None)
    for i in range(3):
        await store.submit(draft(f"m{i}"))
    assert await store.last_seqs(["room", "other", "nowhere"]) == {"room": 3, "other": 0}
    assert await store.last_seq("room") == 3
    assert await store.last_seq("nowhere") == 0


@pytest.mark.usefixtures("database")
async def test_client_ids_are_idempotent_within_and_across_batches() -> None:
    published: list[ChatMessage] = []
    store = MessageStore(published.append)
    message_id = uuid.uuid4()
    first, again = await asyncio.gather(
        store.submit(draft("once", message_id=message_id)),
        store.submit(draft("once", message_id=message_id)),
    )
    later = await store.submit(draft("once", message_id=message_id))
    elsewhere = await store.submit(draft("once", room="other", message_id=message_id))
    assert first.outcome is Outcome.CREATED
    assert again.outcome is later.outcome is Outcome.DUPLICATE
    assert later.message == first.message
    assert elsewhere.outcome is Outcome.CONFLICT
    assert published == [first.message]


@pytest.mark.usefixtures("database")
async def test_failed_commit_reports_to_every_waiter_and_publishes_nothing() -> None:
    published: list[ChatMessage] = []
    store = MessageStore(published.append)
    failures = await asyncio.gather(
        store.submit(draft("a", room="missing-room")),
        store.submit(draft("b", room="missing-room")),
        return_exceptions=True,
    )
    assert all(isinstance(failure, Exception) for failure in failures)
    assert published == []
    assert (await store.submit(draft("fine"))).outcome is Outcome.CREATED


def test_last_seqs_of_more_rooms_than_a_statement_has_parameters(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script("store_many_rooms", postgres_url, cwd=tmp_path)
