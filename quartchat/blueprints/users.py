"""Users: `POST /users`, `GET /users`, `GET /users/{id}`."""

from __future__ import annotations

from uuid import uuid4

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_request, validate_response

from ..lookups import create_or_409, user_or_404
from ..models import User
from ..schemas import ResourceId, Timestamp, bounded_text
from ..wire import format_timestamp

blueprint = Blueprint("users", __name__)


class UserCreate(BaseModel):
    username: bounded_text(64)  # type: ignore[valid-type]
    id: ResourceId | None = None


class UserOut(BaseModel):
    id: str
    username: str
    created_at: Timestamp

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, created_at=format_timestamp(user.created_at))


@blueprint.post("/users")
@validate_request(UserCreate)
@validate_response(UserOut, 201)
async def post_user(data: UserCreate) -> tuple[UserOut, int]:
    """Create a user.

    The client may choose the id; otherwise it is a UUID4. 409 if the id is taken.
    """
    user = await create_or_409(
        User, "USER_EXISTS", id=data.id or str(uuid4()), username=data.username
    )
    return UserOut.of(user), 201


@blueprint.get("/users")
@validate_response(list[UserOut])
async def get_users() -> list[UserOut]:
    """List every user, oldest first."""
    return [UserOut.of(user) for user in await User.all().order_by("created_at", "id")]


@blueprint.get("/users/<user_id>")
@validate_response(UserOut)
async def get_user(user_id: str) -> UserOut:
    """Fetch one user."""
    return UserOut.of(await user_or_404(user_id))
