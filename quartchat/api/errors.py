"""How every failure reaches an HTTP client: `ChatError` codes mapped to statuses, and
the handlers that render every failure, expected or not, as `{"code", "detail"}` JSON."""

from __future__ import annotations

import logging
import math

from jinja2 import TemplateNotFound
from pydantic import ValidationError
from quart import Quart, Response, jsonify, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed

from quartchat.storage.faults import describe, is_outage
from quartchat.wire.errors import ChatError

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


# The HTTP status of every ChatError code: the one place codes meet statuses.
HTTP_STATUS: dict[str, int] = {
    "INVALID_JSON": 400,
    "UNKNOWN_TYPE": 400,
    "INVALID_CONTENT": 400,
    "INVALID_ID": 400,
    "INVALID_REPLAY": 400,
    "INVALID_SINCE": 400,
    "INVALID_AFTER": 400,
    "INVALID_BEFORE": 400,
    "AUTH_REQUIRED": 400,
    "ROOM_NOT_PRIVATE": 400,
    "UNAUTHORIZED": 401,
    "INVALID_TOKEN": 401,
    "TOKEN_EXPIRED": 401,
    "FORBIDDEN": 403,
    "ORIGIN_NOT_ALLOWED": 403,
    "ROOM_NOT_FOUND": 404,
    "USER_NOT_FOUND": 404,
    "AUTH_DISABLED": 404,
    "ROOM_EXISTS": 409,
    "USER_EXISTS": 409,
    "MESSAGE_ID_CONFLICT": 409,
    "CANNOT_ISSUE_TOKENS": 409,
    "MESSAGE_REJECTED": 422,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
}


def status_of(error: ChatError) -> int:
    """The HTTP status a REST client (or a refused socket handshake) gets for `error`."""
    return HTTP_STATUS[error.code]


def error_response(status: int, code: str, detail: str) -> tuple[Response, int]:
    return jsonify({"code": code, "detail": detail}), status


def _validation_detail(error: RequestSchemaValidationError) -> str:
    cause = error.validation_error
    if isinstance(cause, ValidationError):
        problems = []
        for item in cause.errors():
            where = ".".join(str(part) for part in item["loc"]) or "body"
            problems.append(f"{where}: {item['msg']}")
        return "; ".join(problems)
    return str(cause) or "the request body is not valid"


def init_app(app: Quart) -> None:
    """Render every error, expected or not, as `{"code", "detail"}` JSON."""

    @app.errorhandler(ChatError)
    async def handle_chat_error(error: ChatError) -> tuple[Response, int]:
        chat = app.extensions.get("quartchat")
        if chat is not None:
            chat.metrics.errors.labels(error.code).inc()
        response, status = error_response(status_of(error), error.code, error.detail)
        if error.retry_after:
            response.headers["Retry-After"] = str(math.ceil(error.retry_after))
        return response, status

    @app.errorhandler(RequestSchemaValidationError)
    async def handle_validation_error(
        error: RequestSchemaValidationError,
    ) -> tuple[Response, int]:
        if request.method in BODY_METHODS and not request.is_json:
            # quart-schema validates a body of another type as null, without reading it:
            # read it, or Hypercorn drops the keep-alive connection under the client's
            # next request; and say what is wrong.
            await request.get_data()
            detail = "the request body must be JSON sent with Content-Type: application/json"
            return error_response(400, "INVALID_REQUEST", detail)
        return error_response(400, "INVALID_REQUEST", _validation_detail(error))

    @app.errorhandler(HTTPException)
    async def handle_http_exception(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        code = (error.name or "error").upper().replace(" ", "_").replace("'", "")
        detail = error.description or error.name
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response, _ = error_response(status, code, detail)
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
            return response, status
        if status == 400:
            code = "INVALID_REQUEST"
            if detail == BadRequest.description:  # werkzeug's generic text: bad JSON
                detail = "the request body is not valid JSON"
        return error_response(status, code, detail)

    @app.errorhandler(UnicodeDecodeError)
    async def handle_undecodable_body(error: UnicodeDecodeError) -> tuple[Response, int]:
        # Quart decodes a JSON body before parsing it; bytes that are not UTF-8 end up
        # here rather than as a BadRequest.
        return error_response(400, "INVALID_REQUEST", "the request body is not UTF-8 JSON")

    @app.errorhandler(TemplateNotFound)
    async def handle_missing_template(error: TemplateNotFound) -> tuple[Response, int]:
        log.error("template %s is missing from this installation", error.name)
        detail = f"the template {error.name} is missing from this installation"
        return error_response(500, "INTERNAL_ERROR", detail)

    @app.errorhandler(Exception)
    async def handle_unexpected(error: Exception) -> tuple[Response, int]:
        if is_outage(error):
            log.warning(
                "database unavailable: %s", describe(error), extra={"error_code": "UNAVAILABLE"}
            )
            detail = "the database is not answering; retry shortly"
            return error_response(503, "UNAVAILABLE", detail)
        log.exception("unhandled error", exc_info=error, extra={"error_code": "INTERNAL_ERROR"})
        return error_response(500, "INTERNAL_ERROR", "the server failed; this is a bug")
