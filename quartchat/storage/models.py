"""Tortoise models: users, rooms, the messages posted in them, private rooms' members."""

from __future__ import annotations

from typing import TypeVar

from tortoise import fields
from tortoise.models import Model


class User(Model):
    """A chat participant; the id is chosen by the client or is a UUID4."""

    id = fields.CharField(primary_key=True, max_length=64)
    username = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"
        table_description = "Chat participants"
        # GET /users pages in this order
        indexes = (("created_at", "id"),)


class Room(Model):
    """A chat room. `last_seq` and `last_message_at` are the room's message counter row.

    Every write of a message updates them in the same transaction, which is what keeps
    `seq` gapless and timestamps strictly increasing in commit order.
    """

    id = fields.CharField(primary_key=True, max_length=64)
    name = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seq = fields.BigIntField(default=0)
    last_message_at = fields.DatetimeField(null=True)
    # A private room is seen only by its members (RoomMember), its creator first.
    private = fields.BooleanField(default=False, db_default=False)
    created_by = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "rooms"
        table_description = "Chat rooms and their message counters"
        # GET /rooms pages in this order
        indexes = (("created_at", "id"),)


class Message(Model):
    """A stored chat message; `seq` numbers a room's messages 1, 2, 3… in commit order."""

    id = fields.UUIDField(primary_key=True)
    room: fields.ForeignKeyRelation[Room] = fields.ForeignKeyField(
        "models.Room", related_name="messages", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="messages", on_delete=fields.CASCADE
    )
    content = fields.TextField()
    created_at = fields.DatetimeField()
    seq = fields.BigIntField()

    room_id: str
    user_id: str

    class Meta:
        # Tortoise's migration runner splits SQL at semicolons, even inside comments.
        table_description = "Chat messages, numbered per room by seq"
        table = "messages"
        unique_together = (("room", "seq"),)
        indexes = (("room_id", "created_at"),)


class RoomMember(Model):
    """A user's membership of a private room."""

    id = fields.BigIntField(primary_key=True)
    room: fields.ForeignKeyRelation[Room] = fields.ForeignKeyField(
        "models.Room", related_name="members", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    added_at = fields.DatetimeField(auto_now_add=True)

    room_id: str
    user_id: str

    class Meta:
        table = "room_members"
        table_description = "Members of private rooms"
        unique_together = (("room", "user"),)
        # GET /rooms lists the private rooms of a user
        indexes = (("user_id", "room_id"),)


# The models whose ids clients choose, listed and searched alike.
RoomOrUser = TypeVar("RoomOrUser", Room, User)
