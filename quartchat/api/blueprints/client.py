"""The client library under a versioned URL, `/static/v<version>/quartchat.js` (and its
types), cacheable for a year: a new server version is a new URL. The same files at
`/static/…` are revalidated on every use (`no-cache` with an ETag)."""

from __future__ import annotations

from importlib.metadata import version

from quart import Blueprint, Response, abort, current_app, request, send_from_directory
from quart_schema import hide

blueprint = Blueprint("client", __name__)

VERSION = version("quartchat")
# What each file is served as (browsers refuse a module script of another type).
CLIENT_FILES = {
    "quartchat.js": "text/javascript; charset=utf-8",
    "quartchat.d.ts": "application/typescript; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@blueprint.get(f"/static/v{VERSION}/<filename>")
@hide
async def get_client_file(filename: str) -> Response:
    if filename not in CLIENT_FILES:
        abort(404)
    assert current_app.static_folder is not None
    response = await send_from_directory(current_app.static_folder, filename)
    response.headers["Content-Type"] = CLIENT_FILES[filename]
    # One version's file never changes: no request at all until the version does.
    response.headers["Cache-Control"] = IMMUTABLE
    del response.headers["Expires"]
    return response


async def revalidate_static_files(response: Response) -> Response:
    """An app-wide after-request hook: `/static/…` may change with any deploy, so a
    browser asks each time (a 304 when its ETag still matches) instead of running a
    12-hour-old quartchat.js against a newer server."""
    if request.endpoint == "static" and response.status_code < 400:
        response.headers["Cache-Control"] = REVALIDATE
        del response.headers["Expires"]
    return response
