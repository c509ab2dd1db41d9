"""Tokens from the app: JWTs signed with AUTH_SECRET, a public key or a JWKS, the
server key (API_KEY) and closed signup, through real servers, and the forgeries a
hostile client would try."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from itsdangerous import URLSafeTimedSerializer
from websockets.exceptions import ConnectionClosed

from tests.support import (
    RunningServer,
    open_socket,
    receive_messages,
    start_server,
    unique_id,
)

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)

SECRET = "jwt-test-secret-5f4dcc3b5aa765d61d8327deb882cf99"
API_KEY = "app-backend-key-" + "a" * 40
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def claims(sub: str, lifetime: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + lifetime, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """A token signed by hand: PyJWT refuses to make the forgeries below."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{signature}" if secret else f"{signing_input}."


@pytest.fixture(name="server", scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "AUTH_SECRET": SECRET,
        "AUTH_PUBLIC_KEY": PUBLIC_PEM.replace("\n", "\\n"),  # as a one-line variable
        "AUTH_MAX_TOKEN_LIFETIME": "3600",
        "AUTH_TOKEN_TTL": "600",
        "AUTH_AUDIENCE": "chat",
        "API_KEY": API_KEY,
        "OPEN_SIGNUP": "false",
    }
    server = start_server(tmp_path_factory.mktemp("jwt"), env=env)
    yield server
    server.stop()


@pytest.fixture(name="http")
async def _http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        yield http


async def new_room(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post("/rooms", json={"name": "R"}, headers=bearer(API_KEY))
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def refusal(server: RunningServer, room_id: str, user_id: str, token: str) -> str:
    async with open_socket(server, room_id, user_id, f"token={token}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    return closed.value.rcvd.reason


async def test_an_app_minted_token_creates_its_user_on_first_use(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, user_id = await new_room(http), unique_id("user")
    token = jwt.encode(claims(user_id, name="Ada Lovelace", aud="chat"), SECRET, "HS256")
    async with open_socket(server, room["id"], user_id, f"token={token}") as ws:
        await ws.send(json.dumps({"content": "hello"}))
        [message] = await receive_messages(ws, 1)
    assert (message["user_id"], message["username"]) == (user_id, "Ada Lovelace")
    user = await http.get(f"/users/{user_id}", headers=bearer(token))
    assert user.json()["username"] == "Ada Lovelace"
    # REST too: a second new user posts before ever opening a socket, named by its id.
    other = unique_id("user")
    other_token = jwt.encode(claims(other, aud="chat"), SECRET, "HS256")
    posted = await http.post(
        f"/rooms/{room['id']}/messages",
        json={"user_id": other, "content": "hi"},
        headers=bearer(other_token),
    )
    assert posted.status_code == 201 and posted.json()["username"] == other


async def test_rs256_with_the_public_key(server: RunningServer, http: httpx.AsyncClient) -> None:
    room, user_id = await new_room(http), unique_id("user")
    token = jwt.encode(claims(user_id, aud="chat"), RSA_KEY, "RS256")
    async with open_socket(server, room["id"], user_id, f"token={token}") as ws:
        await ws.send(json.dumps({"content": "signed by the app"}))
        [message] = await receive_messages(ws, 1)
    assert message["content"] == "signed by the app"


async def test_forgeries_read_and_write_nothing(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, user_id = await new_room(http), unique_id("user")
    now = int(time.time())
    forged = {
        "another secret": jwt.encode(claims(user_id, aud="chat"), "x" * 48, "HS256"),
        "another RSA key": jwt.encode(claims(user_id, aud="chat"), OTHER_RSA_KEY, "RS256"),
        "alg none": hand_signed({"alg": "none", "typ": "JWT"}, claims(user_id, aud="chat"), b""),
        # Algorithm confusion: HS256 keyed with the public key, which anyone may know.
        "public key as HMAC secret": hand_signed(
            {"alg": "HS256", "typ": "JWT"}, claims(user_id, aud="chat"), PUBLIC_PEM.encode()
        ),
        "no exp": jwt.encode({"sub": user_id, "iat": now, "aud": "chat"}, SECRET, "HS256"),
        "far-future exp": jwt.encode(claims(user_id, 10 * 365 * 86400, aud="chat"), SECRET),
        "expired": jwt.encode(claims(user_id, -120, aud="chat"), SECRET, "HS256"),
        "not yet valid": jwt.encode(claims(user_id, aud="chat", nbf=now + 600), SECRET),
        "wrong audience": jwt.encode(claims(user_id, aud="elsewhere"), SECRET, "HS256"),
        "no sub": jwt.encode({"iat": now, "exp": now + 60, "aud": "chat"}, SECRET, "HS256"),
    }
    for what, token in forged.items():
        reason = await refusal(server, room["id"], user_id, token)
        assert reason, what
        post = await http.post(
            f"/rooms/{room['id']}/messages",
            json={"user_id": user_id, "content": "forged"},
            headers=bearer(token),
        )
        assert post.status_code == 401, (what, post.text)
        assert post.json()["code"] in {"INVALID_TOKEN", "TOKEN_EXPIRED"}, what
        read = await http.get(f"/rooms/{room['id']}/messages", headers=bearer(token))
        assert read.status_code == 401, what
    bad_sub = jwt.encode(claims("../admin", aud="chat"), SECRET, "HS256")
    post = await http.post("/rooms", json={"name": "x"}, headers=bearer(bad_sub))
    assert post.status_code == 401
    assert (await http.get(f"/users/{user_id}", headers=bearer(API_KEY))).status_code == 404
    history = await http.get(f"/rooms/{room['id']}/messages", headers=bearer(API_KEY))
    assert history.json() == []


async def test_the_server_key_decides_who_exists(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    user_id = unique_id("user")
    body = {"id": user_id, "username": "Grace"}
    refused = await http.post("/users", json=body)
    assert (refused.status_code, refused.json()["code"]) == (401, "UNAUTHORIZED")
    created = await http.post("/users", json=body, headers=bearer(API_KEY))
    assert created.status_code == 201 and created.json()["token"]
    user_token = created.json()["token"]
    # A user's token may not create rooms while signup is closed; the key may.
    assert (
        await http.post("/rooms", json={"name": "R"}, headers=bearer(user_token))
    ).status_code == 401
    # The key mints a token for any user, so no identity is ever locked out.
    minted = await http.post(f"/users/{user_id}/token", headers=bearer(API_KEY))
    assert minted.status_code == 200 and minted.json()["user_id"] == user_id
    missing = await http.post(f"/users/{unique_id('user')}/token", headers=bearer(API_KEY))
    assert (missing.status_code, missing.json()["code"]) == (404, "USER_NOT_FOUND")
    stranger = await http.post(f"/users/{user_id}/token")
    assert stranger.status_code == 401


async def test_tokens_of_the_older_format_still_work(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    user_id = unique_id("user")
    await http.post("/users", json={"id": user_id, "username": "Old"}, headers=bearer(API_KEY))
    legacy = URLSafeTimedSerializer(SECRET, salt="quartchat.user-token").dumps(user_id)
    assert (await http.get("/rooms", headers=bearer(legacy))).status_code == 200


class Jwks:
    """A JWKS endpoint on a free port whose keys a test can rotate."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/.well-known/jwks.json"

    def add(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**public, "kid": kid, "alg": "ES256", "use": "sig"})
        return key


async def test_jwks_keys_are_fetched_and_refreshed_on_an_unknown_kid(tmp_path: Path) -> None:
    jwks = Jwks()
    first = jwks.add("one")
    server = start_server(tmp_path, env={"AUTH_JWKS_URL": jwks.url})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
            user_id = unique_id("user")

            def es256(key: ec.EllipticCurvePrivateKey, kid: str) -> str:
                return jwt.encode(claims(user_id), key, "ES256", headers={"kid": kid})

            # Signup is open: any valid token may create a room.
            created = await http.post(
                "/rooms", json={"name": "R"}, headers=bearer(es256(first, "one"))
            )
            assert created.status_code == 201, created.text
            room = created.json()
            # The identity provider rotates: a new key id is fetched once the last
            # fetch is REFRESH_INTERVAL (5 s) old.
            second = jwks.add("two")
            await asyncio.sleep(5.5)
            rotated = f"token={es256(second, 'two')}"
            async with open_socket(server, room["id"], user_id, rotated) as ws:
                await ws.send(json.dumps({"content": "rotated"}))
                [message] = await receive_messages(ws, 1)
            assert message["content"] == "rotated"
            fetched = jwks.fetches
            # Made-up key ids do not turn into a fetch each.
            for attempt in range(20):
                made_up = es256(ec.generate_private_key(ec.SECP256R1()), f"bogus-{attempt}")
                assert (await http.get("/rooms", headers=bearer(made_up))).status_code == 401
            assert jwks.fetches <= fetched + 1
            # No secret: the server verifies but cannot sign.
            cannot = await http.post(f"/users/{user_id}/token", headers=bearer(es256(first, "one")))
            assert (cannot.status_code, cannot.json()["code"]) == (409, "CANNOT_ISSUE_TOKENS")
    finally:
        server.stop()
        jwks.http.shutdown()
        jwks.http.server_close()
