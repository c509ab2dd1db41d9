"""The API documents of a real server, checked by the tools integrators run on them:
`/openapi.json` by openapi-spec-validator and openapi-typescript (whose types must compile
under `tsc --strict`), `/asyncapi.json` by the official AsyncAPI parser. `scripts/test`
installs the Node tools into `.tools/`."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.client.test_types import OPTIONS, TSC
from tests.support import PROJECT_ROOT, RunningServer

HERE = Path(__file__).parent
TOOLS = PROJECT_ROOT / ".tools"
OPENAPI_TYPESCRIPT = TOOLS / "typescript" / "node_modules" / ".bin" / "openapi-typescript"
ASYNCAPI_NODE_MODULES = TOOLS / "asyncapi" / "node_modules"
OPERATIONS = {
    ("get", "/asyncapi.json"): "getAsyncApiDocument",
    ("get", "/health"): "getHealth",
    ("get", "/rooms"): "listRooms",
    ("post", "/rooms"): "createRoom",
    ("get", "/rooms/{room_id}/members"): "listRoomMembers",
    ("put", "/rooms/{room_id}/members/{user_id}"): "addRoomMember",
    ("delete", "/rooms/{room_id}/members/{user_id}"): "removeRoomMember",
    ("get", "/rooms/{room_id}"): "getRoom",
    ("get", "/rooms/{room_id}/messages"): "listMessages",
    ("post", "/rooms/{room_id}/messages"): "createMessage",
    ("get", "/rooms/{room_id}/presence"): "getRoomPresence",
    ("get", "/users"): "listUsers",
    ("post", "/users"): "createUser",
    ("get", "/users/{user_id}"): "getUser",
    ("post", "/users/{user_id}/token"): "renewToken",
}


@pytest.fixture(name="openapi")
async def _openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def spec_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message.splitlines()[0]}"
        for error in OpenAPIV31SpecValidator(document).iter_errors()
    ]


def test_openapi_passes_the_validator(openapi: dict[str, Any]) -> None:
    assert spec_errors(openapi) == []
    # What quart-schema itself writes for a headers model is refused, so the check can fail.
    broken = copy.deepcopy(openapi)
    page = broken["paths"]["/rooms"]["get"]["responses"]["200"]
    page["content"]["headers"] = page.pop("headers")
    assert spec_errors(broken) == [
        "paths//rooms/get/responses/200/content/headers: "
        "Unevaluated properties are not allowed ('Link' was unexpected)"
    ]


def test_operations_are_named_for_humans(openapi: dict[str, Any]) -> None:
    named = {
        (method, path): operation["operationId"]
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    }
    assert named == OPERATIONS


def test_pages_declare_the_link_header(openapi: dict[str, Any]) -> None:
    for path in ("/rooms", "/users"):
        page = openapi["paths"][path]["get"]["responses"]["200"]
        assert list(page["content"]) == ["application/json"]
        link = page["headers"]["Link"]
        assert link["schema"] == {"type": "string"}
        assert link["required"] is False
        assert 'rel="next"' in link["description"]


def test_responses_are_described_in_words(openapi: dict[str, Any]) -> None:
    descriptions = {
        (path, method, status): response["description"]
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
    }
    assert all(len(text.split()) >= 4 for text in descriptions.values()), descriptions
    assert not [text for text in descriptions.values() if "Built-in" in text]
    listed = descriptions[("/rooms/{room_id}/messages", "get", "200")]
    assert listed == "A JSON array; each item is a stored message, as sockets receive it."
    assert descriptions[("/rooms", "post", "409")] == "Conflict: the id is already taken"


@pytest.mark.browser
def test_openapi_typescript_types_compile_strictly(server: RunningServer, tmp_path: Path) -> None:
    assert OPENAPI_TYPESCRIPT.exists(), "install openapi-typescript (scripts/test does)"
    types = tmp_path / "api.d.ts"
    generated = subprocess.run(
        [str(OPENAPI_TYPESCRIPT), f"{server.http_url}/openapi.json", "--output", str(types)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    source = types.read_text()
    # Only the index signature of headers may be `unknown`; a named member typed
    # `unknown` is a media type or a field the generator could not read.
    assert re.findall(r"^\s*[\w\"'/.-]+\??: unknown;$", source, re.MULTILINE) == []
    assert re.search(r"^\s*Link\?: string;$", source, re.MULTILINE), source
    usage = tmp_path / "usage.ts"
    shutil.copy(HERE / "openapi_usage.ts", usage)
    compiled = tsc(usage)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # The types are real: the wrong use of a field is refused.
    wrong = tmp_path / "wrong.ts"
    wrong.write_text(
        'import type { operations } from "./api";\n'
        'type Page = operations["listUsers"]["responses"][200]["content"]["application/json"];\n'
        "export const seqs = (page: Page): number[] => page.map((user) => user.seq);\n"
    )
    refused = tsc(wrong)
    assert refused.returncode != 0 and "seq" in refused.stdout, refused.stdout


def tsc(file: Path) -> subprocess.CompletedProcess[str]:
    assert TSC.exists(), "install TypeScript first (scripts/test does, into .tools/)"
    return subprocess.run(
        [str(TSC), *OPTIONS, str(file)], capture_output=True, text=True, timeout=120
    )


def parse_asyncapi(document: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """Exit code and JSON output lines of the official parser on `document`."""
    assert ASYNCAPI_NODE_MODULES.is_dir(), "install @asyncapi/parser (scripts/test does)"
    result = subprocess.run(
        ["node", str(HERE / "asyncapi_parse.cjs")],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(ASYNCAPI_NODE_MODULES)},
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.browser
async def test_asyncapi_passes_the_official_parser(http: httpx.AsyncClient) -> None:
    document = (await http.get("/asyncapi.json")).json()
    code, lines = parse_asyncapi(document)
    *diagnostics, parsed = lines
    assert code == 0, lines
    # Information and hints only (such as "3.1.0 exists"); no error, no warning.
    assert [d for d in diagnostics if d["severity"] in ("Error", "Warning")] == []
    assert parsed == {"version": "3.0.0", "operations": list(document["operations"])}
    # An operation on a channel that does not exist is refused, so the check can fail.
    broken = copy.deepcopy(document)
    next(iter(broken["operations"].values()))["channel"] = {"$ref": "#/channels/nowhere"}
    code, lines = parse_asyncapi(broken)
    assert code == 1
    assert any(line.get("severity") == "Error" for line in lines), lines
