"""Database lifecycle: Tortoise is started and stopped by the app's serving hooks."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from quart import Quart
from tortoise import Tortoise, connections

MODEL_MODULES: dict[str, Iterable[str | ModuleType]] = {"models": ["quartchat.models"]}


async def connect(database_url: str, *, create_schema: bool = True) -> None:
    """Open the database and, on an empty one, create the schema (safe to repeat)."""
    # The global fallback makes the context visible to Hypercorn's per-connection tasks,
    # which do not inherit the context of the lifespan task that ran this.
    await Tortoise.init(db_url=database_url, modules=MODEL_MODULES, _enable_global_fallback=True)
    if create_schema:
        await Tortoise.generate_schemas(safe=True)


async def disconnect() -> None:
    await Tortoise.close_connections()


async def ping() -> None:
    """Raise if the database does not answer a trivial query."""
    await connections.get("default").execute_query("SELECT 1")


def init_app(app: Quart, database_url: str) -> None:
    """Connect before serving and disconnect after; Tortoise's own Quart helper fails
    under Hypercorn in tortoise-orm 1.1 ("No TortoiseContext is currently active")."""

    @app.before_serving
    async def open_database() -> None:
        await connect(database_url)

    @app.after_serving
    async def close_database() -> None:
        await disconnect()
