"""Field types shared by the request and response models of several blueprints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from quart_schema import document_response

from .models import ID_PATTERN
from .text import name_problem

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


Route = TypeVar("Route", bound=Callable[..., object])


def errors(*statuses: int) -> Callable[[Route], Route]:
    """Document the error statuses a route answers with (503 whenever the database is
    down, on every route), all with the `ErrorOut` body."""

    def decorate(route: Route) -> Route:
        for status in (*statuses, 503):
            route = document_response(ErrorOut, status)(route)
        return route

    return decorate
