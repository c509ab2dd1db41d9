"""Print one SQLite PRAGMA of a database as quartchat opens it (argv: URL, pragma)."""

import asyncio
import sys

from tortoise import connections

from quartchat.storage import db


async def main(url: str, pragma: str) -> None:
    await db.connect(url)
    rows = await connections.get("default").execute_query_dict(f"PRAGMA {pragma}")
    print(rows[0][pragma])
    await db.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
