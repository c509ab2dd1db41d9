"""Request ids: returned to the client and stamped on every log line."""

from __future__ import annotations

import logging
import re

import httpx

from quartchat.logs import FORMAT, RequestIdFilter, request_id


async def test_request_id_is_echoed_or_made(http: httpx.AsyncClient) -> None:
    echoed = await http.get("/health", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    made = await http.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    hostile = await http.get("/health", headers={"X-Request-ID": "bad id; " + "x" * 80})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])


def test_log_lines_carry_the_request_id() -> None:
    token = request_id.set("trace-42")
    try:
        record = logging.LogRecord("quartchat", logging.WARNING, __file__, 1, "boom", None, None)
        assert RequestIdFilter().filter(record)
        line = logging.Formatter(FORMAT).format(record)
    finally:
        request_id.reset(token)
    assert "[trace-42] boom" in line
