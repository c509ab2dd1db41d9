"""One-statement batches number per room and write all or nothing (argv: URL)."""

import asyncio
import sys
import uuid

from tortoise.exceptions import DoesNotExist

from quartchat.storage import db
from quartchat.storage.commit import Draft, commit
from quartchat.storage.models import Message, Room, User


def draft(room: str) -> Draft:
    return Draft(uuid.uuid4(), room, "ann", "Ann", "hi")


async def main(url: str) -> None:
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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
