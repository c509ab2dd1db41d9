"""The shortcuts into framework internals, checked once at startup.

The modules of this package reach past public APIs because measurement said it pays
(see its docstring); commit.py uses aiosqlite's private `_execute` and `_conn` through
`sqlite_thread`. They were written against the versions the lock pins. This module looks
at the installed libraries for the names each shortcut uses and logs one line saying
which are active. A socket shortcut that is missing falls back to the public behaviour,
which is slower but right; the SQLite one has no right fallback (its SQL is SQLite's
own), so with a SQLite database a missing one stops the server at startup, naming what
is gone. Names are not behaviour: under `quartchat serve` every shortcut must also pass
the startup probe (`quartchat/process/probe.py`), and a missing one stops the server too.
"""

from __future__ import annotations

import dis
import logging
import platform
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import aiosqlite
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol import h11
from hypercorn.protocol.ws_stream import Handshake, WSStream
from quart.asgi import ASGIWebsocketConnection
from quart.wrappers.websocket import Websocket
from wsproto.connection import Connection
from wsproto.frame_protocol import FrameProtocol

log = logging.getLogger(__name__)

SqliteRun = Callable[..., Awaitable[Any]]
LIBRARIES = ("quart", "hypercorn", "wsproto", "aiosqlite")
SOCKET_WRITES = "socket frames written at once"
STALLED_RESET = "reset of stalled connections"
COMPRESSION_REFUSED = "compression refused"
FRAME_GUARD = "frame guard (1009, control frames, protocol errors)"
HEAD_GUARD = "header guard (431 before parsing)"
INLINE_SOCKET = "one task per socket"
SQLITE_BATCH = "SQLite batch in one thread call"


class ShortcutMissingError(RuntimeError):
    """An installed library lacks what a shortcut without a right fallback needs."""


@dataclass(frozen=True, slots=True)
class Shortcut:
    name: str
    missing: tuple[str, ...]  # what the installed libraries lack; empty when active

    @property
    def active(self) -> bool:
        return not self.missing


def _attributes_set(cls: type) -> set[str]:
    """Every attribute name the methods of `cls` (and its bases) assign on an object."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for member in vars(klass).values():
            code = getattr(member, "__code__", None)
            if code is not None:
                names.update(
                    str(op.argval) for op in dis.get_instructions(code) if op.opname == "STORE_ATTR"
                )
    return names


def _lacking(cls: type, *attributes: str) -> list[str]:
    known = _attributes_set(cls) | set(dir(cls))
    return [
        f"{cls.__module__}.{cls.__qualname__}.{name}" for name in attributes if name not in known
    ]


def check(frame_guard_installed: bool = True, head_guard_installed: bool = True) -> list[Shortcut]:
    """What each shortcut needs, looked up in the installed libraries."""
    reach_stream = [
        *_lacking(Websocket, "_send"),
        *_lacking(ASGIWebsocketConnection, "send_data"),
        *_lacking(WSStream, "app_send", "send", "connection", "state", "closed", "stream_id"),
    ]
    reach_tcp = [*_lacking(h11.H11Protocol, "stream_send", "send"), *_lacking(TCPServer, "writer")]
    framing = [*_lacking(Connection, "_proto"), *_lacking(FrameProtocol, "extensions")]
    handshake = [*_lacking(WSStream, "handshake"), *_lacking(Handshake, "extensions")]
    frame_guard = _lacking(WSStream, "_handle_events", "_send_wsproto_event", "buffer", "app_put")
    if not frame_guard_installed:
        frame_guard.append("hypercorn.protocol.h11.WSStream (not the class it was written for)")
    head_guard = _lacking(h11.H11Protocol, "connection", "config")
    if not head_guard_installed:
        head_guard.append("hypercorn.protocol.H11Protocol (not the class it was written for)")
    # Quart 0.23 dropped both: its websocket reads a buffer of its own (see inline_socket).
    inline = [
        *_lacking(ASGIWebsocketConnection, "queue", "_create_websocket_from_scope"),
        *_lacking(ASGIWebsocketConnection, "handle_websocket"),
        *_lacking(Websocket, "_receive"),
    ]
    sqlite_batch = _lacking(aiosqlite.Connection, "_execute", "_conn")
    return [
        Shortcut(SOCKET_WRITES, (*reach_stream, *reach_tcp, *framing)),
        Shortcut(STALLED_RESET, (*reach_stream, *reach_tcp)),
        Shortcut(COMPRESSION_REFUSED, (*reach_stream, *handshake)),
        Shortcut(FRAME_GUARD, tuple(frame_guard)),
        Shortcut(HEAD_GUARD, tuple(head_guard)),
        Shortcut(INLINE_SOCKET, tuple(inline)),
        Shortcut(SQLITE_BATCH, tuple(sqlite_batch)),
    ]


def versions() -> str:
    """The installed versions the shortcuts depend on, for log lines."""
    installed = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    return f"{installed}, Python {platform.python_version()}"


def report(
    *, needs_sqlite: bool, frame_guard_installed: bool, head_guard_installed: bool = True
) -> list[Shortcut]:
    """Log which shortcuts are active (one line); raise if SQLite's is needed and gone."""
    shortcuts = check(frame_guard_installed, head_guard_installed)
    states = "; ".join(f"{shortcut.name}: {_state(shortcut)}" for shortcut in shortcuts)
    log.info("framework shortcuts (%s): %s", versions(), states)
    sqlite_batch = next(shortcut for shortcut in shortcuts if shortcut.name == SQLITE_BATCH)
    if needs_sqlite and not sqlite_batch.active:
        raise ShortcutMissingError(_sqlite_missing(", ".join(sqlite_batch.missing)))
    return shortcuts


def _state(shortcut: Shortcut) -> str:
    return "on" if shortcut.active else f"OFF (missing {', '.join(shortcut.missing)})"


def sqlite_thread(connection: object) -> tuple[SqliteRun, sqlite3.Connection]:
    """aiosqlite's way to run a call on its connection's thread, and the raw connection."""
    run = getattr(connection, "_execute", None)
    raw = getattr(connection, "_conn", None)
    if not callable(run) or not isinstance(raw, sqlite3.Connection):
        raise ShortcutMissingError(
            _sqlite_missing(f"{type(connection).__qualname__}._execute/_conn")
        )
    return run, raw


def _sqlite_missing(what: str) -> str:
    return (
        f"the installed aiosqlite {version('aiosqlite')} lacks {what}, which quartchat's SQLite "
        "writes use (commit.py); install the aiosqlite version pinned in pyproject.toml"
    )
