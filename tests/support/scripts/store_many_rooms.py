"""`MessageStore.last_seqs` of more rooms than one statement may have parameters
(32767), as a resync asks for every room with a local socket (argv: URL)."""

import asyncio
import sys

from quartchat.storage import db
from quartchat.storage.models import Room
from quartchat.storage.store import MessageStore
from quartchat.wire.payloads import ChatMessage


def ignore(message: ChatMessage) -> None:
    pass


async def main(url: str) -> None:
    await db.connect(url)
    await Room.create(id="here", name="Here", last_seq=7)
    store = MessageStore(ignore)
    wanted = [f"r{i}" for i in range(40_000)] + ["here"]
    assert await store.last_seqs(wanted) == {"here": 7}
    await db.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
