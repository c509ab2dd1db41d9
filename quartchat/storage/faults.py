"""Telling a database outage (503, retry shortly) from a database refusing one request.

When a batch (a group commit, a handshake lookup) fails, an outage fails every part of
it alike, so its parts are not retried one by one; any other failure may be one part's
fault, so the parts are retried apart and only the guilty one fails.
"""

from __future__ import annotations

import sqlite3
import traceback

from tortoise.exceptions import DBConnectionError

_DATABASE_MODULES = frozenset({"asyncpg", "tortoise", "aiosqlite", "sqlite3"})

# SQLSTATE classes of a server that cannot serve right now rather than of a bad
# statement: connection exception, insufficient resources, operator intervention
# (e.g. shutting down), system error, internal error.
_OUTAGE_SQLSTATE_CLASSES = {"08", "53", "57", "58", "XX"}
# SQLite primary result codes of a database that is busy or broken, not of a bad row.
_OUTAGE_SQLITE_CODES = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_NOTADB,
}


def _chain(error: BaseException) -> list[BaseException]:
    """The error and the errors it was raised from or while handling, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_client_side_data_error(error: BaseException) -> bool:
    # asyncpg's DataError (a value it cannot encode) subclasses its InterfaceError,
    # which otherwise means a connection in a bad state.
    return isinstance(error, ValueError)


def _raised_by_database(error: OSError) -> bool:
    # asyncpg lets the network's own errors through (e.g. host unreachable); any other
    # OSError (a missing file or template) is not the database's.
    return any(
        str(frame.f_globals.get("__name__", "")).partition(".")[0] in _DATABASE_MODULES
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or could not work (503),
    as opposed to refusing what it was asked to store or read, or a bug (500)."""
    for cause in _chain(error):
        if _is_client_side_data_error(cause):
            return False
        if isinstance(cause, DBConnectionError):
            return True
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
        if isinstance(cause, OSError):
            return _raised_by_database(cause)
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
        if isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode is not None:
            return cause.sqlite_errorcode & 0xFF in _OUTAGE_SQLITE_CODES
        if type(cause).__module__.startswith("asyncpg") and "InterfaceError" in {
            base.__name__ for base in type(cause).__mro__
        }:
            return True  # e.g. ConnectionDoesNotExistError: the connection went away
    return False


def describe(error: BaseException) -> str:
    """The error for the log, without the values it may quote (a database's message
    about a value it refused can contain it, and so a message's content)."""
    parts = []
    for cause in _chain(error):
        sqlstate = getattr(cause, "sqlstate", None)
        code = f" SQLSTATE {sqlstate}" if isinstance(sqlstate, str) and sqlstate else ""
        if isinstance(cause, sqlite3.Error) and cause.sqlite_errorname:
            code = f" {cause.sqlite_errorname}"
        parts.append(f"{type(cause).__name__}{code}")
    return " <- ".join(parts)
