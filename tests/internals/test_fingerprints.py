"""Every upstream function or class a reach forks or depends on by shape is still the
source it was written against (the table: quartchat/internals/fingerprints.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from quartchat.internals.fingerprints import UPSTREAM, Fingerprint, source_hash

# What issue 20 names at least; each must be in the table.
REQUIRED = {
    "hypercorn.protocol.ws_stream:WSStream._handle_events",
    "hypercorn.protocol.ws_stream:WSStream.app_send",
    "hypercorn.protocol.ws_stream:WSStream.handle",
    "hypercorn.protocol.h11:H11Protocol.stream_send",
    "hypercorn.protocol.h11:H11Protocol._send_h11_event",
    "hypercorn.asyncio.tcp_server:TCPServer.protocol_send",
    "hypercorn.asyncio.run:worker_serve",
    "hypercorn.logging:AccessLogAtoms",
    "quart.asgi:ASGIWebsocketConnection.__init__",
    "quart.asgi:ASGIWebsocketConnection.__call__",
    "quart.asgi:ASGIWebsocketConnection.handle_websocket",
    "quart.wrappers.websocket:Websocket.__init__",
    "wsproto.connection:Connection.__init__",
    "aiosqlite.core:Connection._execute",
}


@pytest.mark.parametrize("fingerprint", UPSTREAM, ids=[f.target for f in UPSTREAM])
def test_upstream_source_is_the_one_the_reach_was_written_against(
    fingerprint: Fingerprint,
) -> None:
    problem = fingerprint.problem()
    assert problem is None, problem


def test_the_table_names_every_required_object_once() -> None:
    targets = [fingerprint.target for fingerprint in UPSTREAM]
    assert len(targets) == len(set(targets))
    assert set(targets) >= REQUIRED, REQUIRED - set(targets)


def test_a_changed_source_names_the_reach_and_the_file_to_re_read() -> None:
    recorded = next(f for f in UPSTREAM if f.qualname == "WSStream._handle_events")
    changed = Fingerprint(recorded.target, "0" * 16, recorded.then)
    problem = changed.problem()
    assert problem is not None
    assert problem.startswith("Hypercorn's WSStream._handle_events changed since hypercorn 0.18.0")
    assert "re-read hypercorn/protocol/ws_stream.py and port the change to" in problem
    assert "frameguard.py's GuardedWSStream._handle_events" in problem
    assert f"new hash ({recorded.sha256})" in problem


def test_a_renamed_object_is_reported_gone() -> None:
    gone = Fingerprint("quart.asgi:ASGIWebsocketConnection.handle_frames", "0" * 16, "port it")
    problem = gone.problem()
    assert problem is not None
    assert "Quart's ASGIWebsocketConnection.handle_frames is gone since quart 0.22.0" in problem
    assert "re-read quart/asgi.py" in problem


def test_the_hash_ignores_trailing_whitespace_and_nothing_else(tmp_path: Path) -> None:
    def hash_of(name: str, source: str) -> str:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return source_hash(module.send)

    recorded = hash_of("recorded", "def send(data):\n    return data\n")
    assert hash_of("trailing", "def send(data):   \n    return data\t\n") == recorded
    assert hash_of("changed", "def send(data):\n    return data[:1]\n") != recorded
