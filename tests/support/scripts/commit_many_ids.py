"""A batch of more client-chosen ids than one statement may have parameters (32767),
which many senders' bursts can make together, is still stored (argv: URL)."""

import asyncio
import sys
import uuid

from quartchat.storage import db
from quartchat.storage.commit import Draft, commit
from quartchat.storage.models import Message, Room, User


async def main(url: str) -> None:
    await db.connect(url)
    await Room.create(id="here", name="Here")
    await User.create(id="ann", username="Ann")
    drafts = [
        Draft(uuid.uuid4(), "here", "ann", "Ann", "hi", client_id=True) for _ in range(33_000)
    ]
    stored = await commit(drafts)
    assert [s.message.seq for s in stored] == list(range(1, 33_001))
    assert await Message.all().count() == 33_000
    again = await commit(drafts[:2])
    assert [s.outcome.value for s in again] == ["duplicate", "duplicate"], again
    await db.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
