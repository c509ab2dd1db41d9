"""Field types shared by the request and response models of several blueprints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from quart_schema import document_response

from quartchat.wire.text import ID_PATTERN, name_problem

ResourceId = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        description="1 to 64 characters of A-Z, a-z, 0-9, `_` and `-`",
        examples=["test-room"],
    ),
]
Timestamp = Annotated[
    str,
    Field(description="ISO 8601 UTC with microseconds", examples=["2025-10-21T12:00:00.123456Z"]),
]


def _visible_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def bounded_text(max_length: int) -> type[str]:
    """A name: trimmed of surrounding white space, 1 to `max_length` characters, with
    no control or bidi formatting character, and showing something (`text.name_problem`)."""
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_visible_name),
    ]


class ErrorOut(BaseModel):
    """Every error response: a stable code and a human detail."""

    code: str = Field(examples=["ROOM_NOT_FOUND"])
    detail: str


# What each error status means, whichever route answers it: the responses' descriptions
# in /openapi.json (`code` then says exactly which error it was).
ERROR_MEANINGS = {
    400: "the body, query or path is invalid; `code` and `detail` say which part and why",
    401: "a token is needed (the server has AUTH_SECRET) and none, or no valid one, was sent",
    403: "the token is another user's",
    404: "the room or user named does not exist (`code` says which), or, on token routes, "
    "the server has no AUTH_SECRET (`AUTH_DISABLED`)",
    409: "the id is already taken",
    422: "the database refused this message: it was not stored, and sending it again fails",
    429: "the rate limit of this user or address is spent; retry after `Retry-After` seconds",
    503: "the database does not answer; nothing was stored, retry later",
}

Route = TypeVar("Route", bound=Callable[..., object])


def errors(*statuses: int) -> Callable[[Route], Route]:
    """Document the error statuses a route answers with (503 whenever the database is
    down, on every route), all with the `ErrorOut` body."""

    def decorate(route: Route) -> Route:
        for status in (*statuses, 503):
            route = document_response(ErrorOut, status)(route)
        return route

    return decorate
