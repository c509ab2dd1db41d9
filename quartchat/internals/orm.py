"""Two reaches into Tortoise ORM 1.1 (written against tortoise-orm 1.1.9).

- `column`: a model's field object, read from `Model._meta.fields_map`
  (tortoise/models.py, `MetaInfo`, built by `ModelMeta.__new__`). `_meta` is not in
  Tortoise's reference, but its own query builders, pydantic models and migrations read
  it. commit.py writes and reads messages in plain SQL (on SQLite through the raw
  connection) and converts ids and timestamps with the field objects Tortoise's own
  queries use (`to_db_value`, `to_python_value`), so a row it writes reads back through
  the ORM unchanged and the other way round. Not a speed reach: what it saves is a
  second copy of Tortoise's datetime and UUID conversions per database.
- `init`: `Tortoise.init(config=…, _enable_global_fallback=True)` (tortoise/__init__.py),
  a keyword Tortoise's docstring documents and its FastAPI/Starlette/Sanic helpers pass.
  Hypercorn runs each connection in a task that does not inherit the context of the
  lifespan task that connected the database; without the global fallback every query
  from a request or socket fails with "No TortoiseContext is currently active".

Without either, startup fails at once (AttributeError, TypeError): there is no
fallback to choose.
"""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.fields.base import Field
from tortoise.models import Model


def column(model: type[Model], name: str) -> Field[Any]:
    """The field object behind `model.name`, as Tortoise's own queries convert it."""
    field: Field[Any] = model._meta.fields_map[name]
    return field


async def init(config: dict[str, Any]) -> None:
    """Connect Tortoise so that every task of the process sees the connection."""
    await Tortoise.init(config=config, _enable_global_fallback=True)
