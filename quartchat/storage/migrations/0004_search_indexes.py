"""Indexes for searches by the start of a name (`GET /users?q=`, `GET /rooms?q=`, see
quartchat/storage/search.py): `(lower(name), id)` and `lower(id)`. On PostgreSQL the name key
is in byte order (COLLATE "C"), which makes a prefix a range of the index whatever the
database's collation. Expression indexes, so written as SQL for each dialect."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

NAMES = {"users": "username", "rooms": "name"}


def _statements(postgres: bool) -> list[str]:
    byte_order = ' COLLATE "C"' if postgres else ""
    statements = []
    for table, name in NAMES.items():
        statements += [
            f"CREATE INDEX IF NOT EXISTS idx_{table}_name_search "
            f"ON {table} ((lower({name}){byte_order}), id{byte_order})",
            f"CREATE INDEX IF NOT EXISTS idx_{table}_id_search ON {table} (lower(id), id{byte_order})",
        ]
    return statements


async def create_indexes(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    for statement in _statements(client.capabilities.dialect == "postgres"):
        await client.execute_script(statement)


async def drop_indexes(apps: Any, schema_editor: Any) -> None:
    for table in NAMES:
        for kind in ("name", "id"):
            await schema_editor.client.execute_script(f"DROP INDEX IF EXISTS idx_{table}_{kind}_search")


class Migration(migrations.Migration):
    dependencies = [("models", "0003_private_rooms")]

    initial = False

    operations = [ops.RunPython(create_indexes, drop_indexes)]
