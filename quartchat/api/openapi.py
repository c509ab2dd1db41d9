"""How `/openapi.json` is generated: quart-schema's document, made valid OpenAPI 3.1 and
readable by the code generators frontends use (openapi-typescript and the like).

quart-schema 0.25 builds each operation from the route's decorators; this provider
changes three things it gets wrong for us:

- response headers (`document_response(..., headers_model)`): quart-schema puts them
  inside `content`, as if `headers` were a media type, which the OpenAPI schema refuses;
  here they are the response's `headers`, one header object each, with its description;
- response descriptions: quart-schema uses the model's docstring, which for `list[...]`
  is Python's own ("Built-in mutable sequence..."); here they are the words of
  `ERROR_MEANINGS` for errors and the item model's docstring for bodies;
- operation ids: `operation_id("listRooms")` is taken as given, where quart-schema
  prefixes the method (`get_listRooms`, or `get_get_rooms` without the decorator).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from quart_schema import OpenAPIProvider
from quart_schema.casing import snake_to_camel, snake_to_kebab
from quart_schema.conversion import model_schema
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE
from quart_schema.validation import QUART_SCHEMA_RESPONSE_ATTRIBUTE
from werkzeug.routing import Rule

from quartchat.api.schemas import ERROR_MEANINGS, ErrorOut


class OpenAPIDocument(OpenAPIProvider):
    """quart-schema's provider with valid response headers, worded responses and the
    operation ids the routes name."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        route = self._app.view_functions[rule.endpoint]
        models = getattr(route, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
        for operations in paths.values():
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    response["description"] = describe_response(int(status), models[status][0])
        return paths, components

    def build_response_object(
        self, model: type[Any], headers_model: type[Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        response, definitions = super().build_response_object(model, None)
        if headers_model is not None:
            schema = model_schema(
                headers_model, preference=self._app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"]
            )
            definitions.update(schema.get("$defs", {}))
            required = set(schema.get("required", ()))
            response["headers"] = {
                snake_to_kebab(name): header_object(field, name in required)
                for name, field in schema["properties"].items()
            }
        return response, definitions

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str:
        named: str | None = getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, None)
        return named or snake_to_camel(func.__name__)


def header_object(field: dict[str, Any], required: bool) -> dict[str, Any]:
    """An OpenAPI header object from a headers model's field schema. An optional
    header is simply absent, so its `X | None` type is documented as X."""
    schema = {k: v for k, v in field.items() if k not in ("title", "description", "default")}
    variants = [variant for variant in schema.pop("anyOf", ()) if variant != {"type": "null"}]
    if len(variants) == 1:
        schema.update(variants[0])
    elif variants:
        schema["anyOf"] = variants
    header: dict[str, Any] = {"schema": schema, "required": required}
    if "description" in field:
        header["description"] = field["description"]
    return header


def describe_response(status: int, model: object) -> str:
    """A response's description in words: what an error status means, or what the body
    holds (the docstring of its model, or of its items' model)."""
    if model is ErrorOut:
        meaning = ERROR_MEANINGS.get(status)
        return f"{HTTPStatus(status).phrase}: {meaning}" if meaning else HTTPStatus(status).phrase
    if get_origin(model) is list:
        (item,) = get_args(model)
        words = _own_docstring(item)
        if words:
            return f"A JSON array; each item is {words[0].lower()}{words[1:]}"
    words = _own_docstring(model)
    if words and status >= HTTPStatus.BAD_REQUEST:
        return f"{HTTPStatus(status).phrase}: {words[0].lower()}{words[1:]}"
    return words or HTTPStatus(status).phrase


def _own_docstring(model: object) -> str | None:
    """The docstring a quartchat model was written with; never one it inherits (every
    pydantic model would otherwise read as BaseModel's)."""
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        return None
    doc = vars(model).get("__doc__")
    return inspect.cleandoc(doc) if doc else None
