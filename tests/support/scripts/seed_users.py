"""Make `count` users in one statement, half of them then given one shared created_at,
so that pages must also break ties by id; and one with an odd name (argv: URL, count)."""

import asyncio
import sys

from quartchat.storage import db
from quartchat.storage.models import User


async def main(url: str, count: int) -> None:
    await db.connect(url)
    await User.bulk_create(
        [User(id=f"seed-{i:05d}", username=f"Seeded {i}") for i in range(count)],
        batch_size=1000,
    )
    first = await User.all().order_by("created_at").first()
    assert first is not None
    await User.filter(id__startswith="seed-0").update(created_at=first.created_at)
    await User.create(id="odd-one", username="Zoë 100%_Ünïque")
    await db.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
