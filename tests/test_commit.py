"""The PostgreSQL write path, driven directly (Tortoise keeps one engine per process,
so it runs in a process of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import create_postgres_database, drop_postgres_database, run_script

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


@pytest.fixture(name="postgres_url")
async def _postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


def test_one_statement_batches_number_per_room_and_write_all_or_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script(SCRIPT, postgres_url, cwd=tmp_path)
