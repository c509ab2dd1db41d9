"""Schemathesis against the live server's /openapi.json: whatever it generates, the
server never answers 5xx and every answer matches the schema of its status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import start_server

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_no_server_errors_and_responses_match_their_schemas(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.http_url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "40",
                "--seed",
                "20261125",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
