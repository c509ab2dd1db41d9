"""Prometheus metrics: `GET /metrics`."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Blueprint, Response
from quart_schema import hide

from ..chat import current_chat

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@hide
async def get_metrics() -> Response:
    """Open sockets, rooms, messages stored, frames delivered, errors by code,
    slow-consumer closes and the fan-out latency histogram of this process."""
    body = generate_latest(current_chat().metrics.registry)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
