"""The debug console: `GET /` (and `/console`), a page for watching rooms frame by frame,
and the static files it is built from, among them the client library `quartchat.js`."""

from __future__ import annotations

from quart import Blueprint, Quart, Response, abort, request
from quart_schema import hide

from ..pages import render_page

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
    return await render_page("console.html", CONTENT_SECURITY_POLICY)


async def serve_scripts_as_javascript(response: Response) -> Response:
    """An app-wide after-request hook (the static files are served with the console
    switched off too: frontends import quartchat.js)."""
    # Browsers refuse a module script served under another type (nosniff is on), and
    # Python's mimetypes says application/javascript or text/javascript by platform.
    if request.path.startswith("/static/") and request.path.endswith(".js"):
        response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    return response


def hide_static_files(app: Quart) -> None:
    """With the console switched off, its files under `/static/` are 404 too (the static
    folder stays: `/docs` is served from it)."""

    @app.before_request
    async def refuse_console_files() -> None:
        filename = str((request.view_args or {}).get("filename", ""))
        if request.endpoint == "static" and filename.startswith("console."):
            abort(404)
