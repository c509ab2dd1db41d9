"""`GET /docs`: Swagger UI for `/openapi.json`, served from this server alone.

quart-schema's own page loads Swagger UI from a CDN (no integrity hash) and starts it
with an inline script. This one serves the files of the `swagger-ui-bundle-v2`
package and starts them from `static/docs.js`, under a CSP that allows nothing else.
`/openapi.json` itself is quart-schema's, built once per process (`serve_openapi_once`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Blueprint, Quart, Response, send_from_directory
from quart_schema import hide
from swagger_ui_bundle import swagger_ui_path

from quartchat.api.pages import render_page

blueprint = Blueprint("docs", __name__)

# Swagger UI sets inline styles and shows data: images (its icons); nothing else is
# needed beyond our own origin, which "Try it out" calls.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SWAGGER_FILES = {"swagger-ui.css", "swagger-ui-bundle.js"}


@blueprint.get("/docs")
@hide
async def get_docs() -> Response:
    return await render_page("docs.html", CONTENT_SECURITY_POLICY)


@blueprint.get("/docs/<name>")
@hide
async def get_swagger_file(name: str) -> Response:
    if name not in SWAGGER_FILES:
        return Response(status=404)
    response = await send_from_directory(str(swagger_ui_path), name)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def serve_openapi_once(app: Quart) -> None:
    """Serve `/openapi.json` as the bytes of its first build.

    quart-schema builds the document anew for every request: 18-26 ms of CPU (40-80 ms
    on a loaded machine), open to anyone and not rate limited, for a document that
    cannot change while the process runs (it describes the routes registered at start).
    """
    build: Callable[[], Awaitable[Response]] = app.view_functions["openapi"]  # type: ignore[assignment]
    built: list[bytes] = []

    @hide
    async def get_openapi() -> Response:
        if not built:
            built.append(await (await build()).get_data(as_text=False))
        return Response(built[0], content_type="application/json")

    app.view_functions["openapi"] = get_openapi
