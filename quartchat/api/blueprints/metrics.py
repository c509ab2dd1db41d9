"""Prometheus metrics: `GET /metrics`."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, request
from quart_schema import hide

from quartchat.rooms.chat import current_chat
from quartchat.wire.errors import ChatError

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@hide
async def get_metrics() -> Response:
    """Open sockets, rooms, messages stored, frames delivered, errors by code,
    slow-consumer closes, the fan-out latency histogram, and the process's CPU, memory,
    open files and garbage collection; with several workers, all of them added up.

    With METRICS_TOKEN set, only a scraper sending `Authorization: Bearer <token>`."""
    _require_metrics_token(current_chat().settings.metrics_token)
    body = await current_chat().metrics.exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def _require_metrics_token(expected: str) -> None:
    if not expected:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ChatError("UNAUTHORIZED", "send Authorization: Bearer <METRICS_TOKEN>")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ChatError("INVALID_TOKEN", "the metrics token is not valid")
