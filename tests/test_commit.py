"""The write path, driven directly on SQLite and PostgreSQL (Tortoise keeps one engine
per process, so each runs in a process of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_script

# One group-commit algorithm, two dialects: the same batches give the same outcomes on both.
BOTH_ENGINES_SCRIPT = """
import asyncio, sys, uuid
from datetime import timedelta
from tortoise.exceptions import DoesNotExist, IntegrityError
from quartchat import db
from quartchat.commit import Draft, commit
from quartchat.models import Message, Room, User
from quartchat.payloads import utc_now

def draft(room, user="ann", message_id=None):
    return Draft(message_id or uuid.uuid4(), room, user, user.title(), "hi", client_id=True)

async def main(url):
    await db.connect(url)
    try:
        await check()
    finally:
        await db.disconnect()  # else a failed check leaves the process waiting on it

async def check():
    ahead = utc_now() + timedelta(hours=1)  # a room whose last message is in the future
    await Room.create(id="here", name="Here")
    await Room.create(id="there", name="There", last_seq=41, last_message_at=ahead)
    await User.create(id="ann", username="Ann")
    await User.create(id="bob", username="Bob")
    first = draft("here")
    stored = await commit([first, draft("there"), draft("here"), draft("there")])
    assert [s.outcome.value for s in stored] == ["created"] * 4, stored
    assert [(s.message.room_id, s.message.seq) for s in stored] == [
        ("here", 1), ("there", 42), ("here", 2), ("there", 43)]
    assert stored[0].message.created_at < stored[2].message.created_at
    micro = timedelta(microseconds=1)
    assert [s.message.created_at for s in stored[1::2]] == [ahead + micro, ahead + 2 * micro]
    again = await commit([
        draft("here", message_id=first.id),  # the same message resent
        draft("there", message_id=first.id),  # its id, taken in another room
        draft("here", user="bob", message_id=first.id),  # and by another user
        draft("here"),
    ])
    assert [s.outcome.value for s in again] == ["duplicate", "conflict", "conflict", "created"]
    assert again[0].message == again[1].message == stored[0].message
    assert again[3].message.seq == 3
    try:
        await commit([draft("here"), draft("nowhere")])
    except DoesNotExist:
        pass
    else:
        raise AssertionError("a batch naming a missing room must fail")
    try:
        await commit([draft("here"), draft("here", user="nobody")])
    except IntegrityError:  # the engine's own error, as Tortoise names it on both
        pass
    else:
        raise AssertionError("a batch naming a missing user must fail")
    assert await Message.all().count() == 5  # nothing of the failed batches was written
    room = await Room.get(id="there")
    assert (room.last_seq, room.last_message_at) == (43, ahead + 2 * micro)
    assert (await commit([draft("here")]))[0].message.seq == 4  # no seq was lost either

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_client_id_batches_give_the_same_outcomes_on_both_engines(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "sqlite":
        url = f"sqlite://{tmp_path / 'commit.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    run_script(BOTH_ENGINES_SCRIPT, url, cwd=tmp_path)


SCRIPT = """
import asyncio, sys, uuid
from tortoise.exceptions import DoesNotExist
from quartchat import db
from quartchat.commit import Draft, commit
from quartchat.models import Message, Room, User

def draft(room):
    return Draft(uuid.uuid4(), room, "ann", "Ann", "hi")

async def main(url):
    await db.connect(url)
    await Room.create(id="here", name="Here")
    await Room.create(id="there", name="There")
    await User.create(id="ann", username="Ann")
    stored = await commit([draft("here"), draft("there"), draft("here")])
    assert [s.message.seq for s in stored] == [1, 1, 2], stored
    assert stored[0].message.created_at < stored[2].message.created_at
    try:
        await commit([draft("here"), draft("nowhere")])
    except DoesNotExist:
        pass
    else:
        raise AssertionError("a batch naming a missing room must fail")
    assert await Message.all().count() == 3  # nothing of the failed batch was written
    assert (await Room.get(id="here")).last_seq == 2
    stored = await commit([draft("here")])
    assert stored[0].message.seq == 3  # no seq was lost either
    await db.disconnect()

asyncio.run(main(sys.argv[1]))
"""


def test_one_statement_batches_number_per_room_and_write_all_or_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script(SCRIPT, postgres_url, cwd=tmp_path)


ISOLATION_SCRIPT = """
import asyncio, sys, uuid
from quartchat import db
from quartchat.models import Message, Room, User
from quartchat.store import Draft, DraftRejectedError, MessageStore

async def main(url):
    await db.connect(url)
    await Room.create(id="here", name="Here")
    await Room.create(id="there", name="There")
    await User.create(id="ann", username="Ann")
    published = []
    store = MessageStore(lambda message: published.append(message))
    # Text the edge refuses, submitted behind its back: the database refuses it too.
    poison = {3: "nul \\x00 inside", 11: "lone \\ud800 surrogate"}
    drafts = [
        Draft(uuid.uuid4(), "here" if i % 4 else "there", "ann", "Ann", poison.get(i, f"m{i}"),
              client_id=bool(i % 2))
        for i in range(20)
    ]
    futures = [store.submit(draft) for draft in drafts]  # one tick: one batch
    results = await asyncio.gather(*futures, return_exceptions=True)
    for i, result in enumerate(results):
        if i in poison:
            assert isinstance(result, DraftRejectedError), result
            assert result.code == "MESSAGE_REJECTED" and result.status == 422
        else:
            assert result.message.content == f"m{i}", result
    stored = await Message.all().order_by("room_id", "seq").values_list("room_id", "seq", "content")
    assert len(stored) == 18, stored
    for room in ("here", "there"):
        seqs = [seq for room_id, seq, _ in stored if room_id == room]
        assert seqs == list(range(1, len(seqs) + 1)), seqs  # no gap left by the refused ones
        sent = [d.content for i, d in enumerate(drafts) if d.room_id == room and i not in poison]
        assert [c for room_id, _, c in stored if room_id == room] == sent  # in sending order
        assert [m.content for m in published if m.room_id == room] == sent
    await db.disconnect()

asyncio.run(main(sys.argv[1]))
"""


def test_a_draft_the_database_refuses_fails_alone_and_its_batch_is_stored(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script(ISOLATION_SCRIPT, postgres_url, cwd=tmp_path)


MANY_IDS_SCRIPT = """
import asyncio, sys, uuid
from quartchat import db
from quartchat.commit import Draft, commit
from quartchat.models import Message, Room, User

async def main(url):
    await db.connect(url)
    await Room.create(id="here", name="Here")
    await User.create(id="ann", username="Ann")
    # More client-chosen ids than one statement may have parameters (32767): a batch
    # this large, which many senders' bursts can make together, must still be stored.
    drafts = [Draft(uuid.uuid4(), "here", "ann", "Ann", "hi", client_id=True)
              for _ in range(33_000)]
    stored = await commit(drafts)
    assert [s.message.seq for s in stored] == list(range(1, 33_001))
    assert await Message.all().count() == 33_000
    again = await commit(drafts[:2])
    assert [s.outcome.value for s in again] == ["duplicate", "duplicate"], again
    await db.disconnect()

asyncio.run(main(sys.argv[1]))
"""


def test_a_batch_of_more_client_ids_than_a_statement_has_parameters_is_stored(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script(MANY_IDS_SCRIPT, postgres_url, cwd=tmp_path)
