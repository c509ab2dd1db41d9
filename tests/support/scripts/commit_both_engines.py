"""One group-commit algorithm, two dialects: the same client-id batches give the same
outcomes on SQLite and PostgreSQL (argv: URL)."""

import asyncio
import sys
import uuid
from datetime import timedelta

from tortoise.exceptions import DoesNotExist, IntegrityError

from quartchat.storage import db
from quartchat.storage.commit import Draft, commit
from quartchat.storage.models import Message, Room, User
from quartchat.wire.payloads import utc_now


def draft(room: str, user: str = "ann", message_id: uuid.UUID | None = None) -> Draft:
    return Draft(message_id or uuid.uuid4(), room, user, user.title(), "hi", client_id=True)


async def main(url: str) -> None:
    await db.connect(url)
    try:
        await check()
    finally:
        await db.disconnect()  # else a failed check leaves the process waiting on it


async def check() -> None:
    ahead = utc_now() + timedelta(hours=1)  # a room whose last message is in the future
    await Room.create(id="here", name="Here")
    await Room.create(id="there", name="There", last_seq=41, last_message_at=ahead)
    await User.create(id="ann", username="Ann")
    await User.create(id="bob", username="Bob")
    first = draft("here")
    stored = await commit([first, draft("there"), draft("here"), draft("there")])
    assert [s.outcome.value for s in stored] == ["created"] * 4, stored
    assert [(s.message.room_id, s.message.seq) for s in stored] == [
        ("here", 1),
        ("there", 42),
        ("here", 2),
        ("there", 43),
    ]
    assert stored[0].message.created_at < stored[2].message.created_at
    micro = timedelta(microseconds=1)
    assert [s.message.created_at for s in stored[1::2]] == [ahead + micro, ahead + 2 * micro]
    again = await commit(
        [
            draft("here", message_id=first.id),  # the same message resent
            draft("there", message_id=first.id),  # its id, taken in another room
            draft("here", user="bob", message_id=first.id),  # and by another user
            draft("here"),
        ]
    )
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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
