"""Users: `POST /users`, `GET /users`, `GET /users/{id}`."""

from __future__ import annotations

from uuid import uuid4

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import (
    document_response,
    operation_id,
    security_scheme,
    validate_querystring,
    validate_request,
    validate_response,
)

from quartchat.api.listing import ListQuery, NextPageHeaders, list_page
from quartchat.api.lookups import create_or_409, user_or_404
from quartchat.api.schemas import ResourceId, Timestamp, bounded_text, errors
from quartchat.rooms.chat import current_chat
from quartchat.rooms.limits import limit_creations, limit_reads
from quartchat.storage.models import User
from quartchat.wire.errors import ChatError
from quartchat.wire.payloads import format_timestamp

blueprint = Blueprint("users", __name__)


class UserCreate(BaseModel):
    username: bounded_text(64)  # type: ignore[valid-type]
    id: ResourceId | None = None


class UserOut(BaseModel):
    """A user: its id, username and creation time."""

    id: str
    username: str
    created_at: Timestamp

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, created_at=format_timestamp(user.created_at))


class UserCreated(UserOut):
    """The user created, with its token when the server has AUTH_SECRET."""

    token: str | None = Field(
        default=None, description="only when the server has AUTH_SECRET: the user's token"
    )


class TokenOut(BaseModel):
    """A fresh token for the user."""

    user_id: str
    token: str


@blueprint.post("/users")
@operation_id("createUser")
@limit_creations
@security_scheme([{"bearer": []}])
@validate_request(UserCreate)
@validate_response(UserCreated, 201)
@errors(400, 401, 409, 429)
async def post_user(data: UserCreate) -> tuple[UserCreated, int]:
    """Create a user.

    The client may choose the id; otherwise it is a UUID4. 409 if the id is taken.
    With AUTH_SECRET set, the answer carries the user's `token`: sockets present it as
    `?token=`, REST calls as `Authorization: Bearer`. With OPEN_SIGNUP=false only the
    app's backend may create users (`Authorization: Bearer <API_KEY>`, else 401).
    """
    chat = current_chat()
    await chat.tokens.require_creator(user_needed=False)
    user = await create_or_409(
        User, "USER_EXISTS", id=data.id or str(uuid4()), username=data.username
    )
    chat.directory.add_user(user.id, user.username)
    tokens = chat.tokens
    token = tokens.issue(user.id) if tokens.can_issue else None
    return UserCreated(**UserOut.of(user).model_dump(), token=token), 201


@blueprint.post("/users/<user_id>/token")
@operation_id("renewToken")
@security_scheme([{"bearer": []}])
@validate_response(TokenOut)
@errors(401, 403, 404, 409)
async def post_token(user_id: str) -> TokenOut:
    """A fresh token for `user_id`.

    For the app's backend (`Authorization: Bearer <API_KEY>`) for any user, so no
    identity is ever locked out, or in exchange for a still valid token of the same
    user. 404 `USER_NOT_FOUND` for a user that does not exist, 404 `AUTH_DISABLED` when
    authentication is off, 409 `CANNOT_ISSUE_TOKENS` when the server only verifies
    tokens (no AUTH_SECRET: the app's backend mints them)."""
    tokens = current_chat().tokens
    if not tokens.enabled:
        raise ChatError("AUTH_DISABLED", "the server has no AUTH_SECRET")
    if not tokens.can_issue:
        detail = "this server verifies tokens but has no AUTH_SECRET to sign them"
        raise ChatError("CANNOT_ISSUE_TOKENS", detail)
    await tokens.require_bearer(user_id)
    await user_or_404(user_id)
    return TokenOut(user_id=user_id, token=tokens.issue(user_id))


@blueprint.get("/users")
@operation_id("listUsers")
@limit_reads
@security_scheme([{"bearer": []}])
@validate_querystring(ListQuery)
@document_response(list[UserOut], 200, NextPageHeaders)
@errors(400, 401, 429)
async def get_users(query_args: ListQuery) -> Response:
    """Users, oldest first, a page at a time (`limit`, default 100, at most 500).

    When more follow, the `Link` header names the next page:
    `</users?limit=100&after=<id of the last user>>; rel="next"`. `q` searches: the user
    whose id is `q` (ignoring case) first, then users whose username starts with `q`,
    ignoring case, in username order. With AUTH_SECRET set, any
    user's `Authorization: Bearer` token is required.
    """
    await current_chat().tokens.require_bearer()
    return await list_page(User, "username", query_args)


@blueprint.get("/users/<user_id>")
@operation_id("getUser")
@security_scheme([{"bearer": []}])
@validate_response(UserOut)
@errors(401, 404)
async def get_user(user_id: str) -> UserOut:
    """Fetch one user (with AUTH_SECRET set, any user's Bearer token is required)."""
    await current_chat().tokens.require_bearer()
    return UserOut.of(await user_or_404(user_id))
