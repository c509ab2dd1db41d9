"""internals/orm.py against a real Tortoise on SQLite, and internals/worker.py with a
fake Hypercorn worker."""

from __future__ import annotations

import asyncio
import contextvars
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart
from tortoise import Tortoise, connections

from quartchat.internals import orm, worker
from quartchat.storage.db import tortoise_config
from quartchat.storage.models import Message


@pytest.fixture(name="database")
async def _database(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite://{tmp_path / 'orm.sqlite3'}"
    await orm.init(tortoise_config(url))
    yield url
    await Tortoise.close_connections()


async def test_init_makes_the_connection_visible_to_tasks_of_another_context(
    database: str,
) -> None:
    # Hypercorn runs each connection in a task that does not inherit the lifespan
    # task's context: a fresh, empty one stands for it.
    async def query() -> Any:
        return await connections.get("default").execute_query_dict("SELECT 1 AS one")

    task = asyncio.get_running_loop().create_task(query(), context=contextvars.Context())
    assert await task == [{"one": 1}]


async def test_column_converts_as_tortoise_queries_do(database: str) -> None:
    created_at = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)
    field = orm.column(Message, "created_at")
    column_value = field.to_db_value(created_at, Message)
    assert field.to_python_value(column_value) == created_at
    message_id = uuid4()
    assert orm.column(Message, "id").to_db_value(message_id, Message) == str(message_id)
    with pytest.raises(KeyError):
        orm.column(Message, "no_such_field")


async def test_serve_on_runs_hypercorns_worker_on_the_given_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []

    async def worker_serve(app: Any, config: Config, **options: Any) -> None:
        calls.append({"app": app, "config": config, **options})

    async def shutdown_trigger() -> None:
        return None

    monkeypatch.setattr(worker, "worker_serve", worker_serve)
    app, config = Quart(__name__), Config()
    with socket.socket() as listening:
        sockets = Sockets(secure_sockets=[], insecure_sockets=[listening], quic_sockets=[])
        served = worker.wrapped(app, config)
        await worker.serve_on(served, config, sockets, shutdown_trigger)
    [call] = calls
    expected_app = wrap_app(app, config.wsgi_max_body_size, "asgi")
    assert type(served) is type(expected_app)
    assert vars(served) == vars(expected_app)  # the ASGI app, wrapped as serve() does
    assert call["app"] is served
    assert call["config"] is config
    assert call["sockets"] is sockets
    assert call["shutdown_trigger"] is shutdown_trigger
