"""`POST /users` and `GET /users/{id}` through a real server."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.support import unique_id

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_create_user_with_chosen_id(http: httpx.AsyncClient) -> None:
    user_id = unique_id("user")
    response = await http.post("/users", json={"username": "John Doe", "id": user_id})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == user_id
    assert body["username"] == "John Doe"
    assert TIMESTAMP.match(body["created_at"])

    fetched = await http.get(f"/users/{user_id}")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_list_users(http: httpx.AsyncClient) -> None:
    created = (await http.post("/users", json={"username": "Listed"})).json()
    listed = (await http.get("/users", params={"q": created["id"]})).json()
    assert listed == [created]


async def test_create_user_generates_uuid4(http: httpx.AsyncClient) -> None:
    response = await http.post("/users", json={"username": "Ann"})
    assert response.status_code == 201
    assert uuid.UUID(response.json()["id"]).version == 4


async def test_duplicate_user_id_is_409(http: httpx.AsyncClient) -> None:
    user_id = unique_id("user")
    assert (await http.post("/users", json={"username": "A", "id": user_id})).status_code == 201
    response = await http.post("/users", json={"username": "B", "id": user_id})
    assert response.status_code == 409
    assert response.json()["code"] == "USER_EXISTS"


async def test_bad_user_bodies_are_400_with_json(http: httpx.AsyncClient) -> None:
    bad_bodies: list[object] = [
        {},
        {"username": ""},
        {"username": "   "},
        {"username": "x" * 65},
        {"username": 5},
        {"username": "ok", "id": "has space"},
        {"username": "ok", "id": "x" * 65},
        {"username": "ok", "id": ""},
        ["username"],
    ]
    for body in bad_bodies:
        response = await http.post("/users", json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "INVALID_REQUEST"
        assert response.json()["detail"]


async def test_invalid_json_is_400_with_json(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/users", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "INVALID_REQUEST",
        "detail": "the request body is not valid JSON",
    }


async def test_a_body_not_sent_as_json_says_so(http: httpx.AsyncClient) -> None:
    # `curl -d '{...}'` without -H sends a form: the JSON in it must not be reported as
    # "not a dictionary", which sends a newcomer looking in the wrong place.
    body = b'{"username": "Ann"}'
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = await http.post("/users", content=body, headers={"content-type": content_type})
        assert response.status_code == 400
        assert response.json() == {
            "code": "INVALID_REQUEST",
            "detail": "the request body must be JSON sent with Content-Type: application/json",
        }
    sent_as_json = await http.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert sent_as_json.status_code == 201


async def test_unknown_user_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/users/nobody-here")
    assert response.status_code == 404
    assert response.json()["code"] == "USER_NOT_FOUND"


async def test_body_that_is_not_utf8_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/users", content=b"d\xff[\xfe\x12", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
