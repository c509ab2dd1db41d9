"""The debug console: `GET /` (and `/console`), a page for watching rooms frame by frame."""

from __future__ import annotations

from quart import Blueprint, render_template
from quart_schema import hide

blueprint = Blueprint("console", __name__)


@blueprint.get("/")
@blueprint.get("/console")
@hide
async def get_console() -> str:
    return await render_template("console.html")
