"""Health check for load balancers and Railway: `GET /health`."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_response

from .. import db

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

DATABASE_TIMEOUT = 2.0


class HealthOut(BaseModel):
    status: str
    database: str


@blueprint.get("/health")
@validate_response(HealthOut, 200)
@validate_response(HealthOut, 503)
async def get_health() -> tuple[HealthOut, int]:
    """200 `{"status": "ok"}` while the database answers, 503 otherwise."""
    try:
        await asyncio.wait_for(db.ping(), DATABASE_TIMEOUT)
    except Exception as error:  # any failure to answer is "unavailable"
        log.warning("health check: database unavailable: %r", error)
        return HealthOut(status="unavailable", database="unavailable"), 503
    return HealthOut(status="ok", database="ok"), 200
