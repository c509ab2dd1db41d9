"""Bring a database's schema to one migration (argv: URL, migration name)."""

import asyncio
import sys

from tortoise import connections
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from quartchat.storage import db


async def main(url: str, name: str) -> None:
    await db.connect(url, migrate=False)
    try:
        apps = db.tortoise_config(url)["apps"]
        target = MigrationTarget(app_label="models", name=name)
        await MigrationExecutor(connections.get("default"), apps).migrate([target])
    finally:
        await db.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
