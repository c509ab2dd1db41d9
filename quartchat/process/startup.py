"""Starting in a world that is not ready: the database's retries and operators' mistakes.

An operator's mistake (a port in use, a SQLite file that cannot be written, a login the
database refuses) stops `quartchat serve` at once with a `StartupError`: one line that
names the setting and the fix, and no traceback (cli.py writes it). A database that
does not answer yet (a container starting beside it, a network not up) is asked again,
with backoff, for `DB_STARTUP_TIMEOUT` seconds, one line per attempt; SIGTERM ends the
wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hypercorn.config import Config

from quartchat.storage import db
from quartchat.storage.faults import describe, is_outage

log = logging.getLogger(__name__)

# Seconds between attempts: doubling, capped, so a database that comes back within the
# first seconds is found soon and a long wait costs a line every few seconds.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
# One attempt's limit: asyncpg's own is 60 s, which is how long a database that
# accepts the connection and never answers held a start (and its SIGTERM) before.
ATTEMPT_SECONDS = 5.0


class StartupError(BaseException):
    """Why the server cannot start, in one line that names the setting and the fix.

    A BaseException, like SystemExit: it ends the process, so no framework handler on
    its way (Quart logs a failed startup's traceback, Hypercorn wraps it in a
    `LifespanFailureError`) takes it for an error of its own; cli.py writes its line
    and exits with `exit_status`: 2 for a setting to fix, 1 for a database that never
    answered, 0 for a stop that SIGTERM asked for."""

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def database_host(database_url: str) -> str:
    """Where the database is, for the log: `host:port` or the SQLite path, never the
    user or the password."""
    parts = urlsplit(database_url)
    if not db.is_postgres(database_url):
        return parts.netloc + parts.path
    port = parts.port or 5432
    return f"{parts.hostname}:{port}"


def check_sqlite_path(database_url: str) -> None:
    """Fail now, naming the path, if SQLite could not create or write its files there."""
    parts = urlsplit(database_url)
    path = parts.netloc + parts.path
    if db.is_postgres(database_url) or not path or path == ":memory:":
        return
    target = Path(path)
    directory = target.parent
    fix = "point DATABASE_URL at a writable file (e.g. on a mounted volume)"
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise StartupError(f"DATABASE_URL: {directory} {problem}; {fix}")
    try:
        # SQLite creates the file and, beside it, its -wal and -shm files.
        with contextlib.ExitStack() as stack:
            descriptor = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
            stack.callback(os.close, descriptor)
            probe = directory / f".{target.name}.quartchat-probe"
            stack.enter_context(probe.open("wb"))
            stack.callback(probe.unlink)
    except OSError as error:
        raise StartupError(
            f"DATABASE_URL: cannot write the SQLite database {target} ({error.strerror}); {fix}"
        ) from None


async def open_database(
    database_url: str, *, migrate: bool, within: float, stopping: asyncio.Event
) -> None:
    """Connect (and migrate), asking again while the database does not answer, for up
    to `within` seconds; raise `StartupError` when it never did, when it refused for
    another reason, or when `stopping` is set meanwhile. A migration's own failure is
    raised as it is."""
    check_sqlite_path(database_url)
    where = database_host(database_url)
    await _connect(database_url, where, within, stopping)
    if migrate:  # not under an attempt's limit: it may wait its turn behind another instance
        try:
            await _until_stopped(db.apply_migrations(database_url), stopping)
        except _StoppedError:
            await _forget_connections()
            raise _stopped(where) from None


async def _connect(database_url: str, where: str, within: float, stopping: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    attempt = 0
    while True:
        attempt += 1
        left = deadline - loop.time()
        try:
            limit = min(max(left, 1.0), ATTEMPT_SECONDS)
            await _until_stopped(_attempt(database_url, limit), stopping)
            return
        except _StoppedError:
            await _forget_connections()
            raise _stopped(where) from None
        except Exception as error:
            await _forget_connections()
            if _sqlstate(error)[:2] in _REFUSALS or not is_outage(error):
                raise StartupError(_refusal(where, error)) from None
            left = deadline - loop.time()
            if left <= 0:
                raise StartupError(
                    f"the database at {where} did not answer within {within:g} s "
                    f"({_why(error, limit)}); check that it is up and that DATABASE_URL names "
                    "it, or wait longer with DB_STARTUP_TIMEOUT",
                    1,
                ) from None
            delay = min(RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)], left)
            log.warning(
                "startup: database at %s did not answer (attempt %d: %s); next attempt in "
                "%.1f s, %.0f s left (DB_STARTUP_TIMEOUT)",
                where,
                attempt,
                _why(error, limit),
                delay,
                left,
                extra={"attempt": attempt, "database": where},
            )
            try:
                await _until_stopped(asyncio.sleep(delay), stopping)
            except _StoppedError:
                raise _stopped(where) from None


async def _attempt(database_url: str, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        await db.connect(database_url, migrate=False)
        await db.ping()  # Tortoise connects lazily: this is the first round trip


class _StoppedError(Exception):
    pass


def _stopped(where: str) -> StartupError:
    return StartupError(f"stopped while waiting for the database at {where}", 0)


async def _until_stopped(work: Coroutine[Any, Any, None], stopping: asyncio.Event) -> None:
    """Await `work`, or raise `_StoppedError` as soon as `stopping` is set."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise _StoppedError
    task.result()


async def _forget_connections() -> None:
    """Close what a failed attempt opened, so that the next one starts afresh (without
    Tortoise's "shutdown" line: one line per attempt)."""
    tortoise = logging.getLogger("tortoise")
    level = tortoise.level
    tortoise.setLevel(logging.WARNING)
    try:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await db.disconnect()
    finally:
        tortoise.setLevel(level)


def _why(error: Exception, limit: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {limit:.3g} s"
    return describe(error)


# SQLSTATE classes of a database that answered and said no: waiting will not help.
_REFUSALS = {
    "28": "fix the user or password in DATABASE_URL",  # invalid authorization
    "3D": "create the database, or fix its name in DATABASE_URL",  # invalid catalog name
}


def _sqlstate(error: BaseException) -> str:
    """The first SQLSTATE in the error's chain (Tortoise wraps asyncpg's), or ""."""
    for cause in _causes(error):
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate
    return ""


def _refusal(where: str, error: Exception) -> str:
    fix = _REFUSALS.get(_sqlstate(error)[:2], "check DATABASE_URL")
    return f"the database at {where} refused the connection ({describe(error)}); {fix}"


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def check_bind(config: Config, host: str, port: int) -> None:
    """Bind the addresses Hypercorn will bind, and let go: a port in use (or an address
    this host does not have) is an operator's mistake, told in one line."""
    if port == 0:
        return  # the kernel picks a free one
    try:
        sockets = config.create_sockets()
    except socket.gaierror as error:
        problem = f"HOST {host!r} is not an address ({error.strerror}); fix HOST"
        raise StartupError(problem) from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} is in use on {host} (PORT or --port): stop whatever listens "
                "there, or choose another port (--port 0 picks a free one)"
            ) from None
        if error.errno == errno.EACCES:
            raise StartupError(
                f"port {port} may not be bound by this user (PORT or --port): choose a port "
                "above 1023"
            ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            problem = f"HOST {host!r} is not an address of this machine; fix HOST"
            raise StartupError(problem) from None
        raise
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets]:
        sock.close()


def free_port(config: Config) -> int:
    """A port the kernel deems free on the first address of `config` (bound to port 0)."""
    sockets = config.create_sockets()
    listening = [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets]
    port: int = listening[0].getsockname()[1]
    for sock in listening:
        sock.close()
    return port
