"""quartchat.js in Node (where Next.js renders and frontend tests run), with Node's own
test runner (`node --test tests/client/node/`) against a real server: once without a
global WebSocket (Node 20's default) and once with one (Node 22's default, Node 20's
`--experimental-websocket`). Only Node 20 is installed on this machine; the flags give
either behaviour on 20 and on 22 alike."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT, RunningServer

pytestmark = pytest.mark.browser  # needs Node.js and its npm tools (tests/support/tiers.py)

NODE_TESTS = Path(__file__).with_name("node")


def node_test(server: RunningServer, websocket_flag: str, expect_status: str, *files: str) -> str:
    node = shutil.which("node")
    assert node, "install Node.js 20 or later first (scripts/test uses its npm)"
    env = {**os.environ, "QUARTCHAT_URL": server.http_url, "EXPECT_STATUS": expect_status}
    paths = [str(NODE_TESTS / name) for name in files]
    result = subprocess.run(
        [node, websocket_flag, "--test", "--test-reporter=tap", *paths],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=PROJECT_ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_node_major_version_is_20_or_later() -> None:
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    assert int(version.stdout.strip().lstrip("v").split(".")[0]) >= 20, version.stdout


@pytest.mark.parametrize(
    ("flag", "status"),
    [("--no-experimental-websocket", "polling"), ("--experimental-websocket", "open")],
    ids=["without-websocket", "with-websocket"],
)
def test_imported_in_node_it_opens_and_never_crashes(
    server: RunningServer, flag: str, status: str
) -> None:
    output = node_test(server, flag, status, "transport.test.mjs")
    assert "# pass 2\n" in output, output


def test_reconnects_after_1012_and_4008_are_spread_and_back_off(server: RunningServer) -> None:
    output = node_test(server, "--no-experimental-websocket", "open", "backoff.test.mjs")
    assert "# pass 2\n" in output, output
