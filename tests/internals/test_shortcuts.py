"""The shortcuts into framework internals: all in use with the pinned versions, and the
one without a right fallback stops the server instead of failing every write."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from pathlib import Path

import aiosqlite
import pytest

from quartchat.internals.shortcuts import SQLITE_BATCH, ShortcutMissingError, check, report
from quartchat.storage import db
from quartchat.storage.commit import Draft, commit
from tests.support import script_env, start_server


def test_every_shortcut_is_in_use_with_the_pinned_versions() -> None:
    assert {shortcut.name: shortcut.missing for shortcut in check()} == {
        shortcut.name: () for shortcut in check()
    }


@pytest.mark.server
def test_a_served_process_logs_the_shortcuts_in_use_once(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    assert server.stop() == 0
    lines = [line for line in server.log().splitlines() if "framework shortcuts (" in line]
    assert len(lines) == 1, server.log()
    assert "hypercorn 0.18." in lines[0]
    assert "OFF" not in lines[0]
    assert lines[0].count(": on") == len(check())


def test_missing_sqlite_shortcut_is_named_and_fatal_only_for_sqlite(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quartchat.internals.shortcuts")
    monkeypatch.delattr(aiosqlite.Connection, "_execute")
    shortcuts = report(needs_sqlite=False, frame_guard_installed=True)
    [sqlite_batch] = [shortcut for shortcut in shortcuts if shortcut.name == SQLITE_BATCH]
    assert sqlite_batch.missing == ("aiosqlite.core.Connection._execute",)
    assert "SQLite batch in one thread call: OFF (missing aiosqlite" in caplog.text
    with pytest.raises(ShortcutMissingError, match=r"lacks aiosqlite\.core\.Connection\._execute"):
        report(needs_sqlite=True, frame_guard_installed=True)


def test_a_sqlite_server_without_the_shortcut_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.scripts.serve_without_sqlite_shortcut"],
        cwd=tmp_path,
        env=script_env(
            PORT="0", HOST="127.0.0.1", DATABASE_URL=f"sqlite://{tmp_path / 'chat.sqlite3'}"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr  # the log is on stdout
    assert result.returncode != 0, output
    assert "lacks aiosqlite.core.Connection._execute" in output
    assert "pinned in pyproject.toml" in output
    assert "startup: database" not in output  # it stopped before opening it
    assert not (tmp_path / "chat.sqlite3").exists()


async def test_sqlite_writes_never_fall_through_to_the_postgres_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = Draft(id=uuid.uuid4(), room_id="r", user_id="u", username="U", content="hi")
    await db.connect(f"sqlite://{tmp_path / 'shortcuts.sqlite3'}")
    try:
        with monkeypatch.context() as patch:
            patch.delattr(aiosqlite.Connection, "_execute")
            with pytest.raises(ShortcutMissingError, match="_execute"):
                await commit([draft])
    finally:
        await db.disconnect()
