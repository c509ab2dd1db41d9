"""Logging: one line per event with the request id, and never message content.

Every HTTP request and socket gets an id (the client's `X-Request-ID` if it sent a sane
one, else a new one), returned in the `X-Request-ID` response header and added to
every log line written while handling it (the access log's too), so one client's
trouble can be followed. Every line goes to stdout, as `LOG_FORMAT` says: `text`, one
readable line a record, or `json`, one JSON object a line (python-json-logger) with the
record's level, logger, time, message, request id and the fields it is about
(`room_id`, `user_id`, `close_code`, `error_code`…, passed as `extra=`).
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from pythonjsonlogger.json import JsonFormatter
from quart import Quart, Response, request, websocket

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LOG_FORMATS = ("text", "json")
# Where the request id waits in the ASGI scope for Hypercorn's access log, which is
# written outside the request's context.
SCOPE_KEY = "quartchat.request_id"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # the access log passes its own
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


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: `time` (ISO 8601 UTC), `level`, `logger`, `message`,
    `request_id`, then the record's `extra` fields. Every string field has its control
    characters escaped as in the text format, so a viewer that shows a field as text
    shows what a client sent on one line; the object itself is ASCII (the encoder's
    `ensure_ascii`), so no byte of it breaks the line."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "request_id"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key, value in log_data.items():
            if isinstance(value, str) and key not in {"exc_info", "stack_info"}:
                log_data[key] = escape_controls(value)
        return log_data


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonLineFormatter() if log_format == "json" else OneLineFormatter(FORMAT)


_handler: logging.Handler | None = None


def configure(level: str, log_format: str = "text") -> None:
    """Root logging for the `quartchat` commands: every record on stdout, one line each,
    as `log_format` says (`text` or `json`), through one handler that Hypercorn's
    loggers share (`configured_handler`, internals/accesslog.py).

    At DEBUG the database drivers' loggers stay at INFO: their debug lines hold the
    values of queries, and message content never reaches the log."""
    global _handler
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter_for(log_format))
    _handler = handler
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("hypercorn").propagate = False  # Hypercorn logs through its own handlers
    for name in _VALUE_LOGGERS:
        driver = logging.getLogger(name)
        driver.setLevel(max(driver.getEffectiveLevel(), logging.INFO))


def configured_handler() -> logging.Handler | None:
    """The handler `configure` made, if it ran in this process."""
    return _handler


def _choose(incoming: str | None) -> str:
    return incoming if incoming and _SANE_ID.match(incoming) else uuid4().hex


def init_app(app: Quart) -> None:
    @app.before_request
    async def tag_request() -> None:
        chosen = _choose(request.headers.get("X-Request-ID"))
        request_id.set(chosen)
        request.scope[SCOPE_KEY] = chosen  # type: ignore[literal-required]

    @app.before_websocket
    async def tag_socket() -> None:
        chosen = _choose(websocket.headers.get("X-Request-ID"))
        request_id.set(chosen)
        websocket.scope[SCOPE_KEY] = chosen  # type: ignore[literal-required]

    @app.after_request
    async def return_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id.get()
        return response
