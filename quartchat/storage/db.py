"""Database lifecycle: connecting, migrating the schema, and health pings.

The schema is managed by Tortoise's own migrations (quartchat/storage/migrations, made with
`tortoise -c quartchat.storage.db.TORTOISE_ORM makemigrations`), applied by `quartchat migrate`
and at server start, under a lock so that instances starting together migrate once.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.executor import MigrationExecutor

from quartchat.internals import orm

DEFAULT_DATABASE_URL = "sqlite://quartchat.sqlite3"
APP_LABEL = "models"
# Any constant works; it only has to be the same for every instance of quartchat.
MIGRATION_LOCK_KEY = 0x71C4A7
# What SQLite truncates its write-ahead log back to after a checkpoint. With Tortoise's
# default (16 KiB) nearly every commit grows the file again, and a commit that changes
# the file's size also has its metadata flushed: ~65 µs more kernel CPU and ~180 µs more
# wall time per commit, measured on this project's VM. A log that keeps its size is
# overwritten in place; this bound only reclaims what a long burst grew it to.
SQLITE_WAL_SIZE_LIMIT = 32 * 1024 * 1024


def is_postgres(database_url: str) -> bool:
    return urlsplit(database_url).scheme in {"postgres", "postgresql", "asyncpg"}


async def _keep_session(connection: object) -> None:
    """What a pooled PostgreSQL connection needs before its next query: nothing.

    asyncpg's default reset sends a query on every release (advisory locks, cursors,
    LISTEN, SET), one more round trip for every query Tortoise makes; this app's
    pooled sessions hold none of those (the migration lock has its own connection).
    asyncpg still rolls back a transaction left open, whatever this does.
    """


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: str | dict[str, Any] = database_url
    if is_postgres(database_url):
        connection = expand_db_url(database_url)
        connection["credentials"].setdefault("reset", _keep_session)
    elif "journal_size_limit" not in urlsplit(database_url).query:
        connection = expand_db_url(database_url)
        connection["credentials"]["journal_size_limit"] = SQLITE_WAL_SIZE_LIMIT
    return {
        "connections": {"default": connection},
        "apps": {
            APP_LABEL: {
                "models": ["quartchat.storage.models"],
                "migrations": "quartchat.storage.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    """`TORTOISE_ORM`, for Tortoise's own CLI (`tortoise -c quartchat.storage.db.TORTOISE_ORM
    makemigrations`), made when asked for: at import, a bad DATABASE_URL would stop every
    `quartchat` command with a traceback before config.py could name it."""
    if name == "TORTOISE_ORM":
        return tortoise_config(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def connect(database_url: str, *, migrate: bool = True) -> None:
    """Open the database and, unless told not to, bring its schema up to date."""
    await orm.init(tortoise_config(database_url))
    if migrate:
        await apply_migrations(database_url)


async def apply_migrations(database_url: str) -> None:
    """Apply every migration not yet applied; safe when several instances run it at once."""
    async with _migration_lock(database_url):
        apps = tortoise_config(database_url)["apps"]
        await MigrationExecutor(connections.get("default"), apps).migrate()


async def disconnect() -> None:
    await Tortoise.close_connections()


def is_remote() -> bool:
    """Whether the open database is a server across a network (PostgreSQL), which can
    stop answering without closing the connection, rather than a local file."""
    return bool(connections.get("default").capabilities.dialect == "postgres")


async def ping() -> None:
    """Raise if the database does not answer a trivial query."""
    await connections.get("default").execute_query("SELECT 1")


@asynccontextmanager
async def _migration_lock(database_url: str) -> AsyncIterator[None]:
    if is_postgres(database_url):
        import asyncpg

        dsn = database_url.replace("asyncpg://", "postgresql://", 1)
        lock_connection = await asyncpg.connect(dsn.split("?", 1)[0])
        try:
            await lock_connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            yield
        finally:
            await lock_connection.close()  # closing the session releases the lock
        return
    path = urlsplit(database_url).netloc + urlsplit(database_url).path
    if not path or path == ":memory:":
        yield
        return
    descriptor = os.open(f"{Path(path)}.migrate-lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
