"""Hypercorn's access log, with each line's fields computed only when its format uses them.

Hypercorn 0.18's own logger builds (`AccessLogAtoms`), for every request and socket, a
dict of every request and response header and of the whole process environment, then
formats a line from four of them: in a reconnect storm those dicts took 7% of the
server's CPU. The lines written are the same, but for control characters in what the
client sent (escaped, so that no client can forge a line) and `%(h)s` of a client named
by a trusted proxy (which has no port); `access_log_format` keeps its meaning, every
atom included. Hypercorn's error log keeps each record on one line too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any

from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.typing import ResponseSummary, WWWScope

from ..logs import OneLineFormatter, escape_controls


class AccessLogger(Logger):
    """Hypercorn's `Logger` (set as `Config.logger_class`) with lazy atoms."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if self.error_logger is not None:
            for handler in self.error_logger.handlers:
                handler.setFormatter(OneLineFormatter.like(handler.formatter))

    def atoms(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> Mapping[str, str]:
        return LazyAccessLogAtoms(request, response, request_time)


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
