"""Telling a database outage from a database refusing one particular request.

When a batch (a group commit, a handshake lookup) fails, an outage fails every part of
it alike, so its parts are not retried one by one; any other failure may be one part's
fault, so the parts are retried apart and only the guilty one fails.
"""

from __future__ import annotations

import sqlite3

from tortoise.exceptions import DBConnectionError

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


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or could not work, as
    opposed to refusing what it was asked to store or read."""
    for cause in _chain(error):
        if _is_client_side_data_error(cause):
            return False
        if isinstance(cause, DBConnectionError | OSError | TimeoutError):
            return True
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
