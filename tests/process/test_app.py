"""The app factory and what it wires: OpenAPI, JSON errors, health when the database fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart import Quart
from tortoise import Tortoise

from quartchat import create_app
from quartchat.config.settings import ConfigError, Settings
from quartchat.rooms.chat import EXTENSION_KEY
from quartchat.storage import db


@pytest.fixture(name="app")
async def _app(tmp_path: Path) -> AsyncIterator[Quart]:
    app = create_app(overrides={"database_url": f"sqlite://{tmp_path / 'app.sqlite3'}"})
    async with app.test_app():
        yield app


def test_given_settings_are_the_ones_served() -> None:
    settings = Settings(console_enabled=False)
    assert create_app(settings).extensions[EXTENSION_KEY].settings is settings


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError):
        create_app(overrides={"no_such_setting": True})


async def test_openapi_describes_every_route(app: Quart) -> None:
    response = await app.test_client().get("/openapi.json")
    paths = (await response.get_json())["paths"]
    assert set(paths) >= {
        "/users",
        "/users/{user_id}",
        "/rooms",
        "/rooms/{room_id}",
        "/rooms/{room_id}/messages",
        "/rooms/{room_id}/presence",
        "/health",
    }
    assert set(paths["/rooms/{room_id}/messages"]) == {"get", "post"}
    docs = await app.test_client().get("/docs")
    assert docs.status_code == 200


async def test_wrong_method_is_json(app: Quart) -> None:
    response = await app.test_client().delete("/rooms")
    assert response.status_code == 405
    assert (await response.get_json())["code"] == "METHOD_NOT_ALLOWED"


async def test_health_is_503_when_the_database_fails(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    healthy = await client.get("/health")
    assert (healthy.status_code, await healthy.get_json()) == (
        200,
        {"status": "ok", "database": "ok", "broker": "ok"},
    )

    async def broken_ping() -> None:
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(db, "ping", broken_ping)
    sick = await client.get("/health")
    assert sick.status_code == 503
    assert (await sick.get_json())["status"] == "unavailable"


async def test_missing_template_is_a_500_naming_it(app: Quart, tmp_path: Path) -> None:
    app.template_folder = str(tmp_path / "no-templates")
    response = await app.test_client().get("/")
    assert response.status_code == 500
    body = await response.get_json()
    assert body["code"] == "INTERNAL_ERROR"
    assert "console.html" in body["detail"]


async def test_a_database_refusing_a_statement_is_a_500_not_an_outage(app: Quart) -> None:
    # SQLite reports a missing table as an OperationalError, as it does a locked file:
    # only the latter may tell the client to retry shortly.
    await Tortoise.get_connection("default").execute_script("DROP TABLE rooms")
    response = await app.test_client().get("/rooms")
    assert response.status_code == 500
    assert (await response.get_json())["code"] == "INTERNAL_ERROR"
