"""Logging: one line per event with the request id, and never message content at INFO.

Every HTTP request and socket gets an id (the client's `X-Request-ID` if it sent a sane
one, else a new one), returned in the `X-Request-ID` response header and added to
every log line written while handling it, so one client's trouble can be followed.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from uuid import uuid4

from quart import Quart, Response, request, websocket

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(level: str) -> None:
    """Root logging for `quartchat serve`: the format above on stderr."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("hypercorn").propagate = False  # Hypercorn logs through its own handlers


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
