"""Field types shared by the request and response models of several blueprints."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from .models import ID_PATTERN

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


def bounded_text(max_length: int) -> type[str]:
    """A string trimmed of surrounding white space, 1 to `max_length` characters."""
    return Annotated[  # type: ignore[return-value]
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)
    ]
