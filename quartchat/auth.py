"""Optional authentication: signed, expiring user tokens (on when AUTH_SECRET is set).

`POST /users` returns a token for the new user; sockets present it as `?token=` and
REST writes as `Authorization: Bearer <token>`. Tokens are HMAC-signed by itsdangerous
(already a Quart dependency), carry the user id and expire after AUTH_TOKEN_TTL.
Without AUTH_SECRET nothing is checked, so today's frontend keeps working.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from quart import request

from .config import Settings
from .errors import APIError

_SALT = "quartchat.user-token"


class Tokens:
    def __init__(self, settings: Settings) -> None:
        self.enabled = bool(settings.auth_secret)
        self._ttl = settings.auth_token_ttl
        self._serializer = URLSafeTimedSerializer(settings.auth_secret or "unused", salt=_SALT)

    def issue(self, user_id: str) -> str:
        return self._serializer.dumps(user_id)

    def user_of(self, token: str) -> str:
        """The user id a token was issued for; APIError 401 if it is bad or expired."""
        try:
            user_id = self._serializer.loads(token, max_age=self._ttl)
        except SignatureExpired:
            raise APIError(401, "TOKEN_EXPIRED", "the token has expired; get a new one") from None
        except BadSignature:
            raise APIError(401, "INVALID_TOKEN", "the token is not valid") from None
        if not isinstance(user_id, str):
            raise APIError(401, "INVALID_TOKEN", "the token is not valid")
        return user_id

    def require_bearer(self, user_id: str | None = None) -> str | None:
        """For REST writes: the caller's user id from `Authorization: Bearer`, which must
        be `user_id` when given. Returns None (checks nothing) while auth is off."""
        if not self.enabled:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise APIError(401, "UNAUTHORIZED", "send Authorization: Bearer <token>")
        caller = self.user_of(token.strip())
        if user_id is not None and caller != user_id:
            raise APIError(403, "FORBIDDEN", "the token belongs to another user")
        return caller
