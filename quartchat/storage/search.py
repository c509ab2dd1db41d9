"""Searching rooms and users by the start of their name: `GET /users?q=`, `GET /rooms?q=`.

A search lists first the row whose id is `q` (ignoring case; ids differing only in case
are a handful at most), then every row whose name starts with `q` ignoring case, in
name order (ties by id), each row once. Both parts are walks along an index of their
own (migration 0004: `(lower(id), id)` and `(lower(name), id)`, in byte order on PostgreSQL
through COLLATE "C"), so a page costs the rows it returns whatever the table's size: a
search that matches nothing in a million users is two index lookups, where a filter on
the (created_at, id) order read the whole table (0.7-1.3 s on SQLite).

The cursor of the next page is still the id of the last row received: its own
position (in the id part, or its name's) says where the next page starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.fields.base import Field

from quartchat.internals.orm import column
from quartchat.storage.commit import db_datetime
from quartchat.storage.models import RoomOrUser
from quartchat.wire.errors import ChatError
from quartchat.wire.text import is_resource_id


class Visibility(Protocol):
    """Which rows a caller may list, said twice: as a Tortoise filter for pages, and as
    an SQL condition for searches (which walk their indexes in plain SQL), binding each
    value it needs through the function it is given."""

    def q(self) -> Q: ...

    def sql(self, bind: Callable[[Any], str]) -> str: ...


# The rows a page returns: (id, name, created_at, *the extra columns asked for).
Row = tuple[Any, ...]


@dataclass
class _Query:
    """One SQL statement's text and parameters, in either dialect's placeholders."""

    postgres: bool
    params: list[Any] = field(default_factory=list)
    text: str = ""

    def __call__(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    def ordered(self, expression: str) -> str:
        """`expression` compared byte by byte, as the search indexes are."""
        return f'{expression} COLLATE "C"' if self.postgres else expression


async def search_page(
    model: type[RoomOrUser],
    name_field: str,
    q: str,
    after: str | None,
    limit: int,
    *,
    where: Visibility | None = None,
    extra: tuple[str, ...] = (),
) -> list[Row]:
    """Up to `limit` + 1 rows matching `q` after the row `after` (the extra one says
    that a next page exists), only those `where` lets the caller see, each as (id,
    name, created_at, *extra)."""
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    table = model.Meta.table  # our own Meta (models.py), not Tortoise's private _meta
    prefix = await _lower(client, q)
    rows: list[Row] = []
    name_after: tuple[str, str] | None = None
    if after is not None:
        own_id, own_name = await _cursor(client, postgres, table, name_field, after)
        if own_id != prefix:
            name_after = (own_name, after)
    columns = ", ".join(("id", name_field, "created_at", *extra))
    if name_after is None:
        statement = _same_id(postgres, table, columns, prefix, after, limit, where)
        rows = await _fetch(client, statement, model, extra)
    if len(rows) <= limit:
        statement = _names(
            postgres, table, name_field, columns, prefix, name_after, limit - len(rows), where
        )
        rows += await _fetch(client, statement, model, extra)
    return rows


async def _lower(client: BaseDBAsyncClient, text: str) -> str:
    # The database's own lower(), the one its indexes hold (ASCII letters only on
    # SQLite, every letter on PostgreSQL).
    query = _Query(client.capabilities.dialect == "postgres")
    sql = f"SELECT lower(CAST({query(text)} AS TEXT))"
    _, rows = await client.execute_query(sql, query.params)
    (lowered,) = tuple(rows[0])
    return str(lowered)


async def _cursor(
    client: BaseDBAsyncClient, postgres: bool, table: str, name_field: str, after: str
) -> tuple[str, str]:
    """The lowered id and name of the row `after`, or INVALID_AFTER."""
    if is_resource_id(after):
        query = _Query(postgres)
        text = f"SELECT lower(id), lower({name_field}) FROM {table} WHERE id = {query(after)}"
        _, rows = await client.execute_query(text, query.params)
        if rows:
            own_id, own_name = tuple(rows[0])
            return str(own_id), str(own_name)
    raise ChatError("INVALID_AFTER", f"after={after!r} is no {table[:-1]}'s id")


def _same_id(
    postgres: bool,
    table: str,
    columns: str,
    prefix: str,
    after: str | None,
    limit: int,
    where: Visibility | None,
) -> _Query:
    query = _Query(postgres)
    # Bound in the order they stand in the text: SQLite's placeholders are positional.
    condition = f"lower(id) = {query(prefix)} "
    if after is not None:
        condition += f"AND {query.ordered('id')} > {query(after)} "
    if where is not None:
        condition += f"AND {where.sql(query)} "
    query.text = (
        f"SELECT {columns} FROM {table} WHERE {condition}"
        f"ORDER BY {query.ordered('id')} LIMIT {query(limit + 1)}"
    )
    return query


def _names(
    postgres: bool,
    table: str,
    name_field: str,
    columns: str,
    prefix: str,
    after: tuple[str, str] | None,
    limit: int,
    where: Visibility | None,
) -> _Query:
    query = _Query(postgres)
    key, row_id = query.ordered(f"lower({name_field})"), query.ordered("id")
    bounds = f"{key} >= {query(prefix)}"
    end = _after_prefix(prefix)
    # In byte order the names that start with the prefix are exactly those from it up
    # to `end`: the range the index walks. (A filter saying "starts with" on top made
    # PostgreSQL misjudge how many rows match, and sort them all instead.)
    if end is not None:
        bounds += f" AND {key} < {query(end)}"
    else:
        bounds += f" AND substr(lower({name_field}), 1, {query(len(prefix))}) = {query(prefix)}"
    bounds += f" AND lower(id) <> {query(prefix)}"  # listed first, in the id part
    if after is not None:
        bounds += f" AND ({key}, {row_id}) > ({query(after[0])}, {query(after[1])})"
    if where is not None:
        bounds += f" AND {where.sql(query)}"
    query.text = (
        f"SELECT {columns} FROM {table} WHERE {bounds} "
        f"ORDER BY {key}, {row_id} LIMIT {query(limit + 1)}"
    )
    return query


async def _fetch(
    client: BaseDBAsyncClient, query: _Query, model: type[RoomOrUser], extra: tuple[str, ...]
) -> list[Row]:
    _, rows = await client.execute_query(query.text, query.params)
    # Plain SQL returns each column as the database stores it (SQLite: a boolean is 0/1);
    # the field converts it as the ORM's own queries would.
    fields: list[Field[Any]] = [column(model, field_name) for field_name in extra]
    found: list[Row] = []
    for row in rows:
        row_id, name, created_at, *more = tuple(row)
        converted: list[Any] = [
            f.to_python_value(value) for f, value in zip(fields, more, strict=True)
        ]
        found.append((str(row_id), str(name), db_datetime(created_at), *converted))
    return found


def _after_prefix(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix`, in code
    point (= UTF-8 byte) order; None if there is none."""
    for index in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[index]) + 1
        if code == 0xD800:  # surrogates are no characters
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:index] + chr(code)
    return None
