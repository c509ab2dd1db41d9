"""Reading rooms and users a page at a time: `GET /users`, `GET /rooms`.

A page is a JSON array, oldest first, as it always was; when more follow, a `Link`
header (RFC 8288) names the next page: `</users?limit=100&after=<last id>>; rel="next"`.
The cursor is the id of the last item received, so a client may also build the next
URL itself. Pages follow the (created_at, id) index, so page 1,000 costs what page 1
does; searches (`q=`) follow indexes of their own, in name order (`storage/search.py`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from quart import Response, jsonify, request
from tortoise.expressions import Q

from quartchat.storage.models import RoomOrUser
from quartchat.storage.search import Visibility, search_page
from quartchat.wire.errors import ChatError
from quartchat.wire.payloads import format_timestamp
from quartchat.wire.text import is_resource_id

MAX_PAGE = 500


DEFAULT_PAGE = 100


class ListQuery(BaseModel):
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="items per page")
    after: str | None = Field(
        default=None,
        description="the id of the last item of the previous page (the `Link` header's "
        "`rel=next` URL carries it)",
    )
    q: str | None = Field(
        default=None,
        max_length=64,
        # C0 controls (NUL above all) are no name's prefix, and PostgreSQL refuses NUL
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="a search: the item whose id is this (ignoring case), then the items "
        "whose name starts with it, ignoring case (of ASCII letters only, on SQLite), in "
        "name order",
    )


class NextPageHeaders(BaseModel):
    """The response headers of a page (documented in /docs)."""

    link: str | None = Field(
        default=None,
        alias="Link",
        description="only when more follow: the next page (RFC 8288), as "
        '`</users?limit=100&after=<id of the last item>>; rel="next"`',
    )


async def list_page(
    model: type[RoomOrUser],
    name_field: str,
    query: ListQuery,
    *,
    visible: Visibility | None = None,
    extra: tuple[str, ...] = (),
) -> Response:
    """One page of `model` in (created_at, id) order, or a search's (`q`), as
    `[{"id", name_field, "created_at", *extra}]`, only rows `visible` when given, with
    the `Link` header naming the next.

    Rows are read as tuples and written by hand: models and response validation cost
    several times the query for a page of 500."""
    if query.q:
        page = await search_page(
            model, name_field, query.q, query.after, query.limit, where=visible, extra=extra
        )
    else:
        page = await _plain_page(model, name_field, query, visible, extra)
    response = jsonify(
        [
            {
                "id": id_,
                name_field: name,
                "created_at": format_timestamp(created_at),
                **dict(zip(extra, more, strict=True)),
            }
            for id_, name, created_at, *more in page[: query.limit]
        ]
    )
    if len(page) > query.limit:
        arguments = {"limit": str(query.limit), "after": page[query.limit - 1][0]}
        if query.q:
            arguments["q"] = query.q
        response.headers["Link"] = f'<{request.path}?{urlencode(arguments)}>; rel="next"'
    return response


async def _plain_page(
    model: type[RoomOrUser],
    name_field: str,
    query: ListQuery,
    visible: Visibility | None,
    extra: tuple[str, ...],
) -> list[Any]:
    rows = model.all() if visible is None else model.filter(visible.q())
    if query.after is not None:
        last = await _cursor_row(model, query.after)
        rows = rows.filter(
            Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gt=last.id)
        )
    # One more than asked, to know whether a next page exists.
    page: list[Any] = await (
        rows.order_by("created_at", "id")
        .limit(query.limit + 1)
        .values_list("id", name_field, "created_at", *extra)
    )
    return page


async def _cursor_row(model: type[RoomOrUser], after: str) -> RoomOrUser:
    row = await model.get_or_none(id=after) if is_resource_id(after) else None
    if row is None:
        noun = model.__name__.lower()
        raise ChatError("INVALID_AFTER", f"after={after!r} is no {noun}'s id")
    return row
