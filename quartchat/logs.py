"""Logging: one line per event with the request id, and never message content.

Every HTTP request and socket gets an id (the client's `X-Request-ID` if it sent a sane
one, else a new one), returned in the `X-Request-ID` response header and added to
every log line written while handling it, so one client's trouble can be followed.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any
from uuid import uuid4

from quart import Quart, Response, request, websocket

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


# Control characters, and the separators that `str.splitlines` (and so many log
# viewers) break lines at.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Database drivers' debug lines print the values of queries, message content included.
_VALUE_LOGGERS = ("aiosqlite", "asyncpg", "tortoise", "tortoise.db_client")


def escape_controls(text: str) -> str:
    """`text` with every control character written as its escape (`\\n`, `\\x1b`)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


class OneLineFormatter(logging.Formatter):
    """A formatter that keeps each record's message on its one line, whatever a client
    put in the values it quotes: controls are escaped, and the lines of a traceback are
    indented, so no client can start a line that looks like a record of its own."""

    @classmethod
    def like(cls, formatter: logging.Formatter | None) -> OneLineFormatter:
        """This formatter with the format and date format of `formatter`."""
        if formatter is None:
            return cls()
        return cls(formatter._fmt, formatter.datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in text.split("\n"))


def configure(level: str) -> None:
    """Root logging for `quartchat serve`: the format above on stderr, one line a record.

    At DEBUG the database drivers' loggers stay at INFO: their debug lines hold the
    values of queries, and message content never reaches the log."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(OneLineFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("hypercorn").propagate = False  # Hypercorn logs through its own handlers
    for name in _VALUE_LOGGERS:
        driver = logging.getLogger(name)
        driver.setLevel(max(driver.getEffectiveLevel(), logging.INFO))


def _choose(incoming: str | None) -> str:
    return incoming if incoming and _SANE_ID.match(incoming) else uuid4().hex


def init_app(app: Quart) -> None:
    @app.before_request
    async def tag_request() -> None:
        request_id.set(_choose(request.headers.get("X-Request-ID")))

    @app.before_websocket
    async def tag_socket() -> None:
        request_id.set(_choose(websocket.headers.get("X-Request-ID")))

    @app.after_request
    async def return_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id.get()
        return response
