"""The application factory: it only wires settings, extensions and blueprints together."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quart import Quart, Response
from quart_cors import cors
from quart_schema import ExternalDocumentation, Info, QuartSchema

from quartchat.api import errors
from quartchat.api.blueprints import (
    asyncapi,
    client,
    console,
    docs,
    health,
    members,
    messages,
    metrics,
    rooms,
    users,
    ws,
)
from quartchat.api.openapi import OpenAPIDocument
from quartchat.config import logs, proxies
from quartchat.config.settings import Settings
from quartchat.internals import inline_socket
from quartchat.process import lifecycle
from quartchat.rooms import chat, limits
from quartchat.wire.protocol import refuse_deep_json


class MissingFileError(RuntimeError):
    """A file the server needs is not where the installation should have put it."""


def find_project_root() -> Path:
    """The folder holding hypercorn.toml, templates/ and static/: `quartchat/project`
    in an installed wheel (pyproject.toml's package-dir puts them there), else the
    checkout the package sits in (an editable install, or the source tree)."""
    package = Path(__file__).resolve().parents[1]  # quartchat/, above process/
    installed = package / "project"
    return installed if installed.is_dir() else package.parent


PROJECT_ROOT = find_project_root()
CONSOLE_FILES = (
    "templates/console.html",
    "static/console.js",
    "static/console.css",
    "static/quartchat.js",
)
DOCS_FILES = ("templates/docs.html", "static/docs.js")


def require_files(*names: str) -> None:
    """Fail at startup, naming each file, rather than on a user's first request."""
    missing = [str(PROJECT_ROOT / name) for name in names if not (PROJECT_ROOT / name).is_file()]
    if missing:
        raise MissingFileError(
            f"quartchat is installed without {', '.join(missing)}; reinstall it "
            "(pip install .) from a complete checkout"
        )


def create_app(
    settings: Settings | None = None, *, overrides: Mapping[str, Any] | None = None
) -> Quart:
    """Build the app from `settings` (by default the environment's, over the defaults),
    with `overrides` (tests) on top."""
    settings = settings or Settings.from_env()
    if overrides:
        settings = settings.with_overrides(overrides)
    require_files(*DOCS_FILES)
    if settings.console_enabled:
        require_files(*CONSOLE_FILES)

    app = Quart(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # REST keeps the socket's field order
    QuartSchema(
        app,
        info=Info(title="quartchat", version="0.1.0", description=asyncapi.LINK_TEXT),
        external_docs=ExternalDocumentation(url="/asyncapi.json", description=asyncapi.TITLE),
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,  # served by blueprints/docs.py, from this server alone
        openapi_provider_class=OpenAPIDocument,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        # `token` is present only when authentication is on
        pydantic_dump_options={"exclude_none": True},
    )
    refuse_deep_json(app)
    allowed = "*" if "*" in settings.cors_origins else list(settings.cors_origins)
    cors(app, allow_origin=allowed, expose_headers=["Link"])  # the next page of a list
    errors.init_app(app)
    logs.init_app(app)
    limits.init_app(app, settings)
    proxies.init_app(app, settings.forwarded_allow_ips)
    inline_socket.init_app(app)

    @app.after_request
    async def forbid_content_sniffing(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    app.after_request(console.serve_scripts_as_javascript)
    app.after_request(client.revalidate_static_files)

    blueprints = (users, rooms, members, messages, ws, health, docs, metrics, asyncapi, client)
    for blueprint in blueprints:
        app.register_blueprint(blueprint.blueprint)
    docs.serve_openapi_once(app)
    if settings.console_enabled:  # else `/` and `/console` are plain JSON 404s
        app.register_blueprint(console.blueprint)
    else:
        console.hide_static_files(app)
    lifecycle.init_app(app, settings, chat.init_app(app, settings))
    return app
