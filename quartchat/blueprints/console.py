"""The debug console: `GET /` (and `/console`), a page for watching rooms frame by frame."""

from __future__ import annotations

from quart import Blueprint, Quart, Response, abort, render_template, request
from quart_schema import hide

blueprint = Blueprint("console", __name__)

# Scripts and styles only from our own static files (no inline script can run, so an
# HTML payload that slipped into the page could do nothing); sockets to this host only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@blueprint.get("/")
@blueprint.get("/console")
@hide
async def get_console() -> Response:
    response = Response(await render_template("console.html"), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def hide_static_files(app: Quart) -> None:
    """With the console switched off, its files under `/static/` are 404 too (the static
    folder stays: `/docs` is served from it)."""

    @app.before_request
    async def refuse_console_files() -> None:
        filename = str((request.view_args or {}).get("filename", ""))
        if request.endpoint == "static" and filename.startswith("console."):
            abort(404)
