"""quartchat.js served to frontends by a real server: revalidated at `/static/…`,
immutable at `/static/v<version>/…`, the same bytes as the file in the checkout."""

from __future__ import annotations

import json
import tomllib

import httpx

from tests.support import PROJECT_ROOT

FRONTEND = "http://127.0.0.1:3000"


def server_version() -> str:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    version: str = pyproject["project"]["version"]
    return version


def test_the_npm_package_has_the_servers_version() -> None:
    package = json.loads((PROJECT_ROOT / "static" / "package.json").read_text())
    assert package["name"] == "quartchat"
    assert package["version"] == server_version()


async def test_the_versioned_url_is_immutable_and_the_same_file(http: httpx.AsyncClient) -> None:
    source = (PROJECT_ROOT / "static" / "quartchat.js").read_bytes()
    url = f"/static/v{server_version()}/quartchat.js"
    response = await http.get(url, headers={"Origin": FRONTEND})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "expires" not in response.headers
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["access-control-allow-origin"] in {"*", FRONTEND}
    assert response.content == source
    types = await http.get(f"/static/v{server_version()}/quartchat.d.ts")
    assert types.status_code == 200
    assert types.content == (PROJECT_ROOT / "static" / "quartchat.d.ts").read_bytes()
    assert types.headers["content-type"].startswith("application/typescript")


async def test_the_unversioned_url_is_revalidated_with_an_etag(http: httpx.AsyncClient) -> None:
    response = await http.get("/static/quartchat.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert "expires" not in response.headers
    assert response.content == (PROJECT_ROOT / "static" / "quartchat.js").read_bytes()
    etag = response.headers["etag"]
    again = await http.get("/static/quartchat.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "no-cache"
    assert again.content == b""


async def test_other_versions_and_files_are_not_served_as_versioned(
    http: httpx.AsyncClient,
) -> None:
    for path in (
        "/static/v0.0.0-other/quartchat.js",
        f"/static/v{server_version()}/console.js",
        f"/static/v{server_version()}/package.json",
    ):
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/json"), path
        assert "immutable" not in response.headers.get("cache-control", ""), path
