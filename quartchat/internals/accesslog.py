"""Hypercorn's access log, with each line's fields computed only when its format uses them.

Hypercorn 0.18's own logger builds (`AccessLogAtoms`), for every request and socket, a
dict of every request and response header and of the whole process environment, then
formats a line from four of them: in a reconnect storm those dicts took 7% of the
server's CPU. The lines written are the same, but for control characters in what the
client sent (escaped, so that no client can forge a line) and `%(h)s` of a client named
by a trusted proxy (which has no port); `access_log_format` keeps its meaning, every
atom included.

Both of Hypercorn's logs (`accesslog`, `errorlog` in hypercorn.toml) write through the
handler `quartchat serve` set up (logs.py: stdout, LOG_FORMAT) when they name `-`, so
every line of the process has one format and one stream; each access line carries the
request id the app chose (logs.py leaves it in the scope) and, in JSON, its fields.
Successful requests' lines are limited per second, the others counted (logbudget.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any, cast

from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.typing import ResponseSummary, WWWScope

from quartchat.config import logs
from quartchat.config.logbudget import LineBudget, summary
from quartchat.config.logs import OneLineFormatter, escape_controls

_SOCKET_PATH = re.compile(r"^/ws/([^/]+)/([^/]+)$")


class AccessLogger(Logger):
    """Hypercorn's `Logger` (set as `Config.logger_class`) with lazy atoms, quartchat's
    handler, request ids and a budget of lines per second."""

    lines_per_second = 100  # ACCESS_LOG_LINES_PER_SECOND, set by server.load_config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        shared = logs.configured_handler()
        for logger in (self.access_logger, self.error_logger):
            if logger is not None:
                _adopt(logger, shared)
        self.budget = LineBudget(self.lines_per_second)
        self._flush: asyncio.TimerHandle | None = None

    async def access(
        self, request: WWWScope, response: ResponseSummary, request_time: float
    ) -> None:
        if self.access_logger is None:
            return
        status = response["status"] if response is not None else 500
        now = time.monotonic()
        if self.budget.expired(now):
            self._write_summary()
        if status >= 400 or self.budget.take(now):
            self.access_logger.info(
                self.access_log_format,
                self.atoms(request, response, request_time),
                extra=_fields(request, status, request_time),
            )
            return
        kind = "socket handshake" if request["type"] == "websocket" else request["method"]
        self.budget.hold(f"{status} {kind}")
        if self._flush is None:
            delay = max(0.0, self.budget.ends - now)
            self._flush = asyncio.get_running_loop().call_later(delay, self._write_summary)

    def _write_summary(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        held = self.budget.release()
        if held and self.access_logger is not None:
            self.access_logger.info(
                summary(held, self.budget.window),
                extra={"request_id": "-", "not_written": dict(held)},
            )

    def atoms(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> Mapping[str, str]:
        return LazyAccessLogAtoms(request, response, request_time)


def _adopt(logger: logging.Logger, shared: logging.Handler | None) -> None:
    """Write `logger`'s records through `shared` (`-` in hypercorn.toml: the process's
    own stream) or, for a file, with the same format; one line a record either way."""
    if shared is None:
        for handler in logger.handlers:
            handler.setFormatter(OneLineFormatter.like(handler.formatter))
        return
    streams = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
    if streams:
        logger.handlers = [shared]
    for handler in logger.handlers:
        if handler is not shared:
            handler.setFormatter(shared.formatter)
            handler.addFilter(logs.RequestIdFilter())
    logger.propagate = False


def _fields(request: WWWScope, status: int, request_time: float) -> dict[str, Any]:
    """The `extra` of an access line: what a JSON line carries besides its message."""
    fields: dict[str, Any] = {
        "request_id": cast(Mapping[str, Any], request).get(logs.SCOPE_KEY, "-"),
        "status": status,
        "method": request["method"] if request["type"] == "http" else "GET",
        "path": request["path"],
        "duration_ms": round(request_time * 1000, 3),
    }
    client = request.get("client")
    if client:
        fields["client"] = str(client[0])
    socket_path = _SOCKET_PATH.match(request["path"])
    if request["type"] == "websocket" and socket_path:
        fields["room_id"], fields["user_id"] = socket_path.groups()
    return fields


def _header(headers: Iterable[tuple[bytes, bytes]], name: str) -> str:
    """The last value of a header, as Hypercorn's dict of them keeps."""
    wanted = name.encode("latin1")
    found = "-"
    for key, value in headers:
        if key.lower() == wanted:
            found = value.decode("latin1")
    return found


def _environment(name: str) -> str:
    found = "-"
    for key, value in os.environ.items():
        if key.lower() == name:
            found = value
    return found


class LazyAccessLogAtoms(Mapping[str, Any]):
    """The atoms of `hypercorn.logging.AccessLogAtoms`, each computed when looked up,
    with the same values (unknown atoms read "-")."""

    def __init__(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> None:
        self._request = request
        self._response = response
        self._time = request_time

    def __getitem__(self, key: str) -> Any:
        value = self._value(key)
        # The path, query and headers are the client's: a decoded %0A must not end the line.
        return escape_controls(value) if isinstance(value, str) else value

    def _value(self, key: str) -> Any:
        if key.startswith("{") and len(key) > 3 and key[-2] == "}":
            name, source = key[1:-2].lower(), key[-1]
            if source == "i":
                return _header(self._request["headers"], name)
            if source == "o":
                return _header(self._response_headers(), name)
            if source == "e":
                return _environment(name)
            return "-"
        atom = _ATOMS.get(key)
        return atom(self) if atom is not None else "-"

    def __iter__(self) -> Iterator[str]:
        return iter(_ATOMS)

    def __len__(self) -> int:
        # Never empty: logging treats an empty mapping argument as no mapping at all.
        return len(_ATOMS)

    def _response_headers(self) -> Iterable[tuple[bytes, bytes]]:
        return self._response.get("headers", []) if self._response is not None else []

    def _remote_addr(self) -> str | None:
        client = self._request.get("client")
        if client is None:
            return None
        if len(client) == 2:
            # Port 0: a client named by a proxy's X-Real-IP, whose port nobody told us.
            return f"{client[0]}:{client[1]}" if client[1] else str(client[0])
        if len(client) == 1:
            return str(client[0])
        return f"<???{client}???>"

    def _method(self) -> str:
        request = self._request
        return request["method"] if request["type"] == "http" else "GET"

    def _protocol(self) -> str:
        return self._request.get("http_version", "ws")

    def _query_string(self) -> str:
        return self._request["query_string"].decode()

    def _path_with_query(self) -> str:
        query = self._query_string()
        return self._request["path"] + ("?" + query if query else "")

    def _status(self) -> str:
        return str(self._response["status"]) if self._response is not None else "-"

    def _status_phrase(self) -> str:
        if self._response is None:
            return "-"
        try:
            return HTTPStatus(self._response["status"]).phrase
        except ValueError:
            return f"<???{self._response['status']}???>"


_ATOMS: dict[str, Callable[[LazyAccessLogAtoms], Any]] = {
    "h": LazyAccessLogAtoms._remote_addr,
    "l": lambda atoms: "-",
    "t": lambda atoms: time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
    "r": lambda atoms: f"{atoms._method()} {atoms._request['path']} {atoms._protocol()}",
    "R": lambda atoms: f"{atoms._method()} {atoms._path_with_query()} {atoms._protocol()}",
    "s": LazyAccessLogAtoms._status,
    "st": LazyAccessLogAtoms._status_phrase,
    "S": lambda atoms: atoms._request["scheme"],
    "m": LazyAccessLogAtoms._method,
    "U": lambda atoms: atoms._request["path"],
    "Uq": LazyAccessLogAtoms._path_with_query,
    "q": LazyAccessLogAtoms._query_string,
    "H": LazyAccessLogAtoms._protocol,
    "b": lambda atoms: atoms["{Content-Length}o"],
    "B": lambda atoms: atoms["{Content-Length}o"],
    "f": lambda atoms: atoms["{Referer}i"],
    "a": lambda atoms: atoms["{User-Agent}i"],
    "T": lambda atoms: int(atoms._time),
    "D": lambda atoms: int(atoms._time * 1_000_000),
    "L": lambda atoms: f"{atoms._time:.6f}",
    "p": lambda atoms: f"<{os.getpid()}>",
}
