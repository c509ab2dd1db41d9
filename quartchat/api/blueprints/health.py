"""Health check for load balancers and Railway: `GET /health`."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import operation_id, validate_response

from quartchat.rooms.chat import current_chat
from quartchat.storage import db

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

DATABASE_TIMEOUT = 2.0


class HealthOut(BaseModel):
    """The state of the database and of the broker (Redis), each `ok` or `unavailable`."""

    status: str
    database: str
    broker: str
    # "ok": every fast path passed the startup probe (absent when none ran: not
    # `quartchat serve`); a server whose probe failed never answers at all.
    fast_paths: str | None = None


@blueprint.get("/health")
@operation_id("getHealth")
@validate_response(HealthOut, 200)
@validate_response(HealthOut, 503)
async def get_health() -> tuple[HealthOut, int]:
    """200 `{"status": "ok"}` while the database answers, 503 when it does not.

    A broker (Redis) that is down makes the status `degraded`, still 200: this
    instance keeps serving its own sockets and reconnects by itself. Under
    `quartchat serve`, `fast_paths` is `ok`: the socket and SQLite write paths passed
    the startup probe (a server whose probe failed never starts).
    """
    broker = "ok" if current_chat().relay.broker_healthy else "unavailable"
    fast_paths = current_chat().fast_paths
    try:
        await asyncio.wait_for(db.ping(), DATABASE_TIMEOUT)
    except Exception as error:  # any failure to answer is "unavailable"
        log.warning("health check: database unavailable: %r", error)
        unavailable = HealthOut(
            status="unavailable", database="unavailable", broker=broker, fast_paths=fast_paths
        )
        return unavailable, 503
    status = "ok" if broker == "ok" else "degraded"
    return HealthOut(status=status, database="ok", broker=broker, fast_paths=fast_paths), 200
