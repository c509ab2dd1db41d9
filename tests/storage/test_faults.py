"""Telling an outage (fail the whole batch) from a refusal (find the draft at fault)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from tortoise.exceptions import DBConnectionError, OperationalError, ValidationError

from quartchat.storage.faults import describe, is_outage


def raised_from(outer: type[Exception], inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as error:
            raise outer(error) from error
    except Exception as wrapped:
        return wrapped


def sqlite_error(sql: str) -> sqlite3.Error:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    try:
        connection.execute(sql)
    except sqlite3.Error as error:
        return error
    finally:
        connection.close()
    raise AssertionError("the statement did not fail")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("connection refused"),
        DBConnectionError("cannot connect"),
        TimeoutError(),
        raised_from(OperationalError, asyncpg.exceptions.ConnectionDoesNotExistError("gone")),
        raised_from(OperationalError, asyncpg.exceptions.AdminShutdownError("shutting down")),
        raised_from(OperationalError, asyncpg.exceptions.TooManyConnectionsError("too many")),
    ],
)
def test_outages(error: Exception) -> None:
    assert is_outage(error)


def test_a_busy_sqlite_database_is_an_outage() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert is_outage(busy)


@pytest.mark.parametrize(
    "error",
    [
        raised_from(OperationalError, asyncpg.exceptions.CharacterNotInRepertoireError("0x00")),
        raised_from(OperationalError, asyncpg.exceptions.DataError("invalid input 'x\\ud800'")),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        ValidationError("id: Length of 'xxx' 65 > 64"),
        sqlite_error("INSERT INTO t (id, v) VALUES (1, NULL)"),
    ],
)
def test_refusals_of_what_was_asked(error: Exception) -> None:
    assert not is_outage(error)


def test_the_description_does_not_quote_the_refused_value() -> None:
    error = raised_from(
        OperationalError, asyncpg.exceptions.DataError("invalid input: 'secret \\ud800'")
    )
    assert "secret" not in describe(error)
    assert describe(error) == "OperationalError <- DataError SQLSTATE 22000"
    nul = raised_from(OperationalError, asyncpg.exceptions.CharacterNotInRepertoireError("x"))
    assert describe(nul) == "OperationalError <- CharacterNotInRepertoireError SQLSTATE 22021"


async def test_only_database_errors_count_as_an_outage() -> None:
    with socket.socket() as probe:  # a port nobody listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/test", timeout=10)
    assert is_outage(refused.value)

    with pytest.raises(OSError) as not_database:
        (Path(__file__).parent / "no-such-file").read_text()
    assert not is_outage(not_database.value)
