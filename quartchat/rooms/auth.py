"""Authentication: who a request or a socket acts as.

On when any of AUTH_SECRET, AUTH_PUBLIC_KEY or AUTH_JWKS_URL is set; off otherwise, so
today's frontend keeps working. Tokens are JWTs (RFC 7519):

- HS256, signed with AUTH_SECRET: the tokens `POST /users` and `POST /users/{id}/token`
  return, and any the app's backend mints with the same secret;
- RS256 or ES256, verified with AUTH_PUBLIC_KEY (PEM) or the keys of AUTH_JWKS_URL: the
  app's backend (or its identity provider) signs, quartchat only verifies.

Claims: `sub` is the user id and `exp` is required; `exp` is honoured to the second,
`nbf` and `iat` with `LEEWAY` seconds of clock skew; a lifetime (`exp` - `iat`, or what
is left of it) over AUTH_MAX_TOKEN_LIFETIME is refused; `aud` and `iss` are checked
when AUTH_AUDIENCE or AUTH_ISSUER is set; an optional `name` is the username a user the
token names is created with on first use; an optional `rooms` (a list of room ids)
makes its user a member of those private rooms for the token's lifetime. Tokens of
quartchat's older itsdangerous format are still accepted with AUTH_SECRET until they
expire, so an upgrade logs no one out.

API_KEY is the app's backend itself: `Authorization: Bearer <API_KEY>` acts as the
server (`Identity.server`), which may do everything a user may, as any user.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from quart import request

from quartchat.config.settings import Settings
from quartchat.wire.errors import ChatError
from quartchat.wire.text import is_resource_id, name_problem

log = logging.getLogger(__name__)

_SALT = "quartchat.user-token"
# Seconds of clock skew allowed between the app that mints a token and this server.
LEEWAY = 30
ASYMMETRIC = ("RS256", "ES256")
USERNAME_LIMIT = 64
MAX_GRANTED_ROOMS = 1000


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token or key speaks for: a user (`user_id`, and the `name` its token
    offers), or the app's backend (`server`, through API_KEY)."""

    user_id: str = ""
    name: str | None = None
    server: bool = False
    rooms: frozenset[str] = frozenset()  # private rooms the token grants (its `rooms`)

    def may_act_as(self, user_id: str) -> bool:
        return self.server or self.user_id == user_id


SERVER = Identity(server=True)


def invalid(detail: str = "the token is not valid") -> ChatError:
    return ChatError("INVALID_TOKEN", detail)


class JwksKeys:
    """The keys of a JWKS URL, fetched on first use, again after `MAX_AGE`, and at once
    for a key id not seen yet, but never more often than every `REFRESH_INTERVAL`
    (tokens naming made-up key ids must not turn into a flood of fetches)."""

    MAX_AGE = 600.0
    REFRESH_INTERVAL = 5.0
    FETCH_TIMEOUT = 5.0

    def __init__(self, url: str) -> None:
        self.url = url
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        now = time.monotonic()
        stale = now - self._fetched_at > self.MAX_AGE
        unknown = kid not in self._keys and now - self._fetched_at > self.REFRESH_INTERVAL
        if stale or unknown:
            async with self._lock:
                if time.monotonic() - self._fetched_at > self.REFRESH_INTERVAL:
                    await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise invalid("the token's signing key (kid) is not in AUTH_JWKS_URL's keys")
        return self._keys[kid]

    async def _refresh(self) -> None:
        try:
            document = await asyncio.to_thread(self._fetch)
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (OSError, ValueError, jwt.PyJWTError) as error:
            self._fetched_at = time.monotonic()  # retried after REFRESH_INTERVAL
            log.warning(
                "AUTH_JWKS_URL could not be read (%s); keeping %d keys", error, len(self._keys)
            )
            if not self._keys:
                raise ChatError("UNAVAILABLE", "the token keys cannot be read now", 5.0) from None
            return
        self._keys = {key.key_id: key.key for key in keys if key.algorithm_name in ASYMMETRIC}
        self._fetched_at = time.monotonic()

    def _fetch(self) -> Any:
        with urllib.request.urlopen(self.url, timeout=self.FETCH_TIMEOUT) as response:
            return json.loads(response.read(1 << 20))


class Tokens:
    """Issues quartchat's own tokens and says who a token or the API key speaks for."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.auth_secret
        self._ttl = settings.auth_token_ttl
        self._max_lifetime = settings.auth_max_token_lifetime
        self._audience = settings.auth_audience or None
        self._issuer = settings.auth_issuer or None
        self._api_key = settings.api_key
        self._public_key = _public_key(settings.auth_public_key)
        self._jwks = JwksKeys(settings.auth_jwks_url) if settings.auth_jwks_url else None
        self._legacy = URLSafeTimedSerializer(settings.auth_secret or "unused", salt=_SALT)
        self.enabled = bool(self._secret or self._public_key is not None or self._jwks)
        self.open_signup = settings.open_signup
        self._single_use: dict[str, str] = {}

    @property
    def can_issue(self) -> bool:
        """Whether this server signs tokens itself (AUTH_SECRET); with only a public key
        or a JWKS, the app's backend mints them."""
        return bool(self._secret)

    def issue(self, user_id: str) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "iat": now, "exp": now + self._ttl}
        if self._audience:
            claims["aud"] = self._audience
        if self._issuer:
            claims["iss"] = self._issuer
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def single_use(self, user_id: str) -> str:
        """A random token for `user_id` that this process alone knows and accepts once:
        the startup probe's socket, also where the server cannot sign tokens."""
        token = secrets.token_urlsafe(32)
        self._single_use[token] = user_id
        return token

    async def identify(self, token: str) -> Identity:
        """Who `token` (or the API key) speaks for; ChatError 401 if it is bad or expired."""
        if token in self._single_use:
            return Identity(user_id=self._single_use.pop(token))
        if self._api_key and hmac.compare_digest(token.encode(), self._api_key.encode()):
            return SERVER
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Identity(user_id=self._legacy_user(token))
        algorithm = header.get("alg")
        key = await self._key_for(algorithm, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY,
                # `exp` is checked below without the leeway: a token expires on time.
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                    "verify_exp": False,
                },
            )
        except jwt.PyJWTError as error:
            raise invalid(f"the token is not valid: {error}") from None
        return self._identity(claims)

    async def _key_for(self, algorithm: object, kid: object) -> Any:
        if algorithm == "HS256" and self._secret:
            return self._secret
        if algorithm in ASYMMETRIC:
            if self._public_key is not None:
                return self._public_key
            if self._jwks is not None:
                return await self._jwks.key_for(kid if isinstance(kid, str) else None)
        raise invalid(f"tokens signed with {algorithm!r} are not accepted here")

    def _identity(self, claims: dict[str, Any]) -> Identity:
        subject, name, expires = claims["sub"], claims.get("name"), claims["exp"]
        if not isinstance(expires, int | float):
            raise invalid("the token's exp is not a time")
        if expires <= time.time():
            raise ChatError("TOKEN_EXPIRED", "the token has expired; get a new one")
        if not isinstance(subject, str) or not is_resource_id(subject):
            raise invalid("the token's sub is not a user id (1-64 of A-Z a-z 0-9 _ -)")
        issued = claims.get("iat")
        start = issued if isinstance(issued, int | float) else time.time()
        if expires - start > self._max_lifetime + LEEWAY:
            raise invalid(
                f"the token lives longer than AUTH_MAX_TOKEN_LIFETIME ({self._max_lifetime} s)"
            )
        if name is not None and (
            not isinstance(name, str) or not 0 < len(name) <= USERNAME_LIMIT or name_problem(name)
        ):
            raise invalid("the token's name is not a valid username")
        return Identity(user_id=subject, name=name, rooms=_granted_rooms(claims.get("rooms")))

    def _legacy_user(self, token: str) -> str:
        if not self._secret:
            raise invalid()
        try:
            user_id = self._legacy.loads(token, max_age=self._ttl)
        except SignatureExpired:
            raise ChatError("TOKEN_EXPIRED", "the token has expired; get a new one") from None
        except BadSignature:
            raise invalid() from None
        if not isinstance(user_id, str):
            raise invalid()
        return user_id

    async def bearer(self, *, required: bool) -> Identity | None:
        """Who `Authorization: Bearer` speaks for: None when there is none and it is not
        `required`; 401 when it is required and missing, or present and bad."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            if required:
                raise ChatError("UNAUTHORIZED", "send Authorization: Bearer <token>")
            return None
        return await self.identify(token.strip())

    async def require_bearer(self, user_id: str | None = None) -> Identity | None:
        """For the API's routes while authentication is on: the caller's identity, which
        must act as `user_id` when given (the API key acts as anyone). Returns None
        (checks nothing) while authentication is off."""
        if not self.enabled:
            return None
        caller = await self.bearer(required=True)
        assert caller is not None
        if user_id is not None and not caller.may_act_as(user_id):
            raise ChatError("FORBIDDEN", "the token belongs to another user")
        return caller

    async def require_creator(self, *, user_needed: bool) -> Identity | None:
        """`POST /users` (open to anyone) and `POST /rooms` (`user_needed`: a user's token
        while authentication is on). With OPEN_SIGNUP=false only the API key may."""
        if not self.open_signup:
            return await self.require_server()
        return await self.require_bearer() if user_needed else None

    async def require_server(self) -> Identity:
        """Routes for the app's backend only (API_KEY)."""
        caller = await self.bearer(required=True)
        if caller is None or not caller.server:
            raise ChatError("UNAUTHORIZED", "send Authorization: Bearer <API_KEY>")
        return caller


def _granted_rooms(claim: object) -> frozenset[str]:
    if claim is None:
        return frozenset()
    if (
        not isinstance(claim, list)
        or len(claim) > MAX_GRANTED_ROOMS
        or not all(isinstance(room, str) and is_resource_id(room) for room in claim)
    ):
        raise invalid(f"the token's rooms must be a list of at most {MAX_GRANTED_ROOMS} room ids")
    return frozenset(claim)


def _public_key(pem: str) -> Any:
    return load_pem_public_key(pem.encode()) if pem else None
