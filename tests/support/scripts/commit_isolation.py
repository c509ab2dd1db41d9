"""A draft the database refuses fails alone and the rest of its batch is stored, in
sending order and without gaps (argv: URL)."""

import asyncio
import sys
import uuid

from quartchat.api.errors import status_of
from quartchat.storage import db
from quartchat.storage.models import Message, Room, User
from quartchat.storage.store import Draft, DraftRejectedError, MessageStore
from quartchat.wire.payloads import ChatMessage


async def main(url: str) -> None:
    await db.connect(url)
    await Room.create(id="here", name="Here")
    await Room.create(id="there", name="There")
    await User.create(id="ann", username="Ann")
    published: list[ChatMessage] = []
    store = MessageStore(published.append)
    # Text the edge refuses, submitted behind its back: the database refuses it too.
    poison = {3: "nul \x00 inside", 11: "lone \ud800 surrogate"}
    drafts = [
        Draft(
            uuid.uuid4(),
            "here" if i % 4 else "there",
            "ann",
            "Ann",
            poison.get(i, f"m{i}"),
            client_id=bool(i % 2),
        )
        for i in range(20)
    ]
    futures = [store.submit(draft) for draft in drafts]  # one tick: one batch
    results = await asyncio.gather(*futures, return_exceptions=True)
    for i, result in enumerate(results):
        if i in poison:
            assert isinstance(result, DraftRejectedError), result
            assert result.code == "MESSAGE_REJECTED" and status_of(result) == 422
        else:
            assert not isinstance(result, BaseException), result
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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
