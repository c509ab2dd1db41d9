"""The debug console: `GET /` (and `/console`), a page for watching rooms frame by frame,
and the static files it is built from, among them the client library `quartchat.js`."""

from __future__ import annotations

from quart import Blueprint, Quart, Response, abort, request
from quart_schema import hide

from quartchat.api.pages import render_page

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


# Browsers refuse a module script served under another type (nosniff is on), and
# Python's mimetypes says application/javascript or text/javascript by platform, and
# takes `.ts` (quartchat.d.ts) for a Qt translation file.
_STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".ts": "application/typescript; charset=utf-8",
}


async def serve_scripts_as_javascript(response: Response) -> Response:
    """An app-wide after-request hook (the static files are served with the console
    switched off too: frontends import quartchat.js). Only a file served is retyped: a
    404 stays the JSON error it is."""
    if request.endpoint == "static" and response.status_code < 400:
        extension = request.path[request.path.rfind(".") :]
        if extension in _STATIC_TYPES:
            response.headers["Content-Type"] = _STATIC_TYPES[extension]
    return response


def hide_static_files(app: Quart) -> None:
    """With the console switched off, its files under `/static/` are 404 too (the static
    folder stays: `/docs` is served from it)."""

    @app.before_request
    async def refuse_console_files() -> None:
        filename = str((request.view_args or {}).get("filename", ""))
        if request.endpoint == "static" and filename.startswith("console."):
            abort(404)
