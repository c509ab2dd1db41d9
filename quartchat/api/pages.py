"""HTML pages served under a Content-Security-Policy of their own."""

from __future__ import annotations

from quart import Response, render_template


async def render_page(template: str, content_security_policy: str) -> Response:
    """`template` rendered as an HTML response that carries `content_security_policy`."""
    response = Response(await render_template(template), mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy
    return response
