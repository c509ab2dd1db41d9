"""The upstream code each reach forks or depends on by shape, fingerprinted.

Each entry is a function or class of Quart, Hypercorn, wsproto, aiosqlite or Tortoise
with a hash of its source as it was when the reach was written (the versions in
`WRITTEN_AGAINST`), and what to do when it changes. The hash is of
`inspect.getsource(…)` with trailing whitespace stripped from each line, so any other
change to the upstream code, even one that keeps every name, shows up
(tests/internals/test_fingerprints.py checks them all).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The import name of each library, its name in prose, its distribution, and the
# version whose source the hashes below were taken from.
WRITTEN_AGAINST = {
    "hypercorn": ("Hypercorn", "hypercorn", "0.18.0"),
    "quart": ("Quart", "quart", "0.22.0"),
    "wsproto": ("wsproto", "wsproto", "1.3.2"),
    "aiosqlite": ("aiosqlite", "aiosqlite", "0.22.1"),
    "tortoise": ("Tortoise", "tortoise-orm", "1.1.9"),
}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    target: str  # "module:Qualified.name"
    sha256: str  # the first 16 hex digits of the normalised source's SHA-256
    then: str  # what to do with the change, after re-reading the upstream file

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def qualname(self) -> str:
        return self.target.partition(":")[2]

    def upstream_file(self) -> str:
        """The upstream file to re-read, as a path inside its distribution."""
        spec = importlib.util.find_spec(self.module)
        root = importlib.util.find_spec(self.module.partition(".")[0])
        if spec is None or spec.origin is None or root is None or root.origin is None:
            return self.module.replace(".", "/") + ".py"
        return Path(spec.origin).relative_to(Path(root.origin).parent.parent).as_posix()

    def installed_hash(self) -> str | None:
        """The hash of the installed source, or None if the object is gone."""
        try:
            found: object = importlib.import_module(self.module)
            for name in self.qualname.split("."):
                # From the class's own namespace, so a property or classmethod is itself.
                found = vars(found)[name] if isinstance(found, type) else getattr(found, name)
        except (ImportError, AttributeError, KeyError):
            return None
        found = getattr(found, "fget", None) or getattr(found, "__func__", None) or found
        return source_hash(found)

    def problem(self) -> str | None:
        """None if the installed source is the one recorded; else what to re-read."""
        found = self.installed_hash()
        if found == self.sha256:
            return None
        library, distribution, written = WRITTEN_AGAINST[self.module.partition(".")[0]]
        try:
            installed = version(distribution)
        except PackageNotFoundError:
            installed = "not installed"
        what = "is gone" if found is None else "changed"
        return (
            f"{library}'s {self.qualname} {what} since {distribution} {written} (installed: "
            f"{installed}): re-read {self.upstream_file()} and {self.then}, then record its "
            f"new hash ({found}) in quartchat/internals/fingerprints.py"
        )


def source_hash(code: object) -> str:
    source = inspect.getsource(code)  # type: ignore[arg-type]
    normalised = "\n".join(line.rstrip() for line in source.splitlines())
    return hashlib.sha256(normalised.encode()).hexdigest()[:16]


_GUARD = "quartchat/internals/frameguard.py's GuardedWSStream"
_TRANSPORT = "quartchat/internals/transport.py"
_INLINE = "quartchat/internals/inline_socket.py's InlineWebsocketConnection"
_ACCESS = "quartchat/internals/accesslog.py's LazyAccessLogAtoms"
_WORKER = "quartchat/internals/worker.py's serve_on"

UPSTREAM: tuple[Fingerprint, ...] = (
    # Hypercorn: the WebSocket stream (frameguard.py forks, transport.py drives)
    Fingerprint(
        "hypercorn.protocol.ws_stream:WSStream._handle_events",
        "ed5f0c4e41136e42",
        f"port the change to {_GUARD}._handle_events (a fork of it)",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:WSStream.app_send",
        "d8175126f3aa2d8f",
        f"check {_GUARD}.app_send (wraps it) and {_TRANSPORT}'s SocketWriter, which repeats "
        "its checks (closed, CONNECTED) before writing and drops frames as it does",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:WSStream.handle",
        "7336bd3d7ae203b9",
        f"check that {_GUARD} still gets every received frame through _handle_events and "
        "that the handshake is still built before the app runs (transport's refuse_compression)",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:WSStream._send_wsproto_event",
        "bab82e2febc2146e",
        f"check {_GUARD}._close and _refuse_too_big, which send their close frames with it",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:WSStream.__init__",
        "975da430da59a0cd",
        f"check the attributes {_GUARD} and {_TRANSPORT}'s SocketWriter read (send, closed, "
        "state, buffer, app_put, stream_id, connection, handshake)",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:WebsocketBuffer",
        "34c9f5fc79b24bfe",
        f"check {_GUARD}._handle_events, which relies on extend() raising FrameTooLargeError",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:Handshake.__init__",
        "53b292b0576321f9",
        f"check {_TRANSPORT}'s refuse_compression, which clears the offered `extensions`",
    ),
    Fingerprint(
        "hypercorn.protocol.ws_stream:Handshake.accept",
        "2dd7002c0d8162f1",
        f"check {_TRANSPORT}'s refuse_compression (no offered extensions, no "
        "permessage-deflate) and SocketWriter's plain path (no extension on the connection)",
    ),
    # Hypercorn: the HTTP/1.1 protocol and TCP server behind a stream
    Fingerprint(
        "hypercorn.protocol.h11:H11Protocol._create_stream",
        "3a510f381035a80a",
        "check quartchat/internals/frameguard.py's install, which replaces the module's "
        "`WSStream` name this builds streams from, and that streams still get stream_send",
    ),
    Fingerprint(
        "hypercorn.protocol.h11:H11Protocol.stream_send",
        "cde728995d2aab94",
        f"check {_TRANSPORT}'s _tcp_server (stream.send is this; its self.send is the TCP "
        "server's protocol_send) and that a stream's Data is still written as it comes",
    ),
    Fingerprint(
        "hypercorn.protocol.h11:H11Protocol._send_h11_event",
        "86c3cfb31ad84055",
        f"check that it still writes each event at once: {_TRANSPORT} writes frames straight "
        "to the TCP writer, which a buffered handshake response could be overtaken by",
    ),
    Fingerprint(
        "hypercorn.asyncio.tcp_server:TCPServer.__init__",
        "fc25aba4763e4c52",
        f"check {_TRANSPORT}, which reads its `writer` (frames written, connections reset)",
    ),
    Fingerprint(
        "hypercorn.asyncio.tcp_server:TCPServer.protocol_send",
        "04bcb741a2a6b0fe",
        f"port the change to {_TRANSPORT}'s _write_and_drain (what this does with RawData)",
    ),
    # Hypercorn: the worker and the access log
    Fingerprint(
        "hypercorn.asyncio:serve",
        "472b08805d0291b0",
        f"port the change to {_WORKER} (what it does, given listening sockets), or drop "
        "the reach if serve() now takes them",
    ),
    Fingerprint(
        "hypercorn.asyncio.run:worker_serve",
        "b91118280dda736d",
        f"check {_WORKER}, which calls it with sockets= and shutdown_trigger=",
    ),
    Fingerprint(
        "hypercorn.utils:wrap_app",
        "a90be8b983e2b02b",
        f"check {_WORKER}, which wraps the app with it as serve() does",
    ),
    Fingerprint(
        "hypercorn.logging:AccessLogAtoms",
        "fa3418059d80f410",
        f"port the change to {_ACCESS} (the same atoms, computed on lookup)",
    ),
    Fingerprint(
        "hypercorn.logging:Logger.atoms",
        "9096fe9775878ae5",
        "check quartchat/internals/accesslog.py's AccessLogger.atoms, which overrides it",
    ),
    Fingerprint(
        "hypercorn.logging:Logger.access",
        "b97b64d50cb193d3",
        "check that it still formats its line from self.atoms(…) (AccessLogger's lazy atoms)",
    ),
    Fingerprint(
        "hypercorn.logging:Logger.__init__",
        "a1ff2a3d1179d9b3",
        "check quartchat/internals/accesslog.py's AccessLogger.__init__ (error_logger handlers)",
    ),
    # Quart: the websocket connection (inline_socket.py replaces its two tasks)
    Fingerprint(
        "quart.asgi:ASGIWebsocketConnection.__init__",
        "16bf51bbb2428315",
        f"port the change to {_INLINE}.__init__ (which sets the same attributes, no queue)",
    ),
    Fingerprint(
        "quart.asgi:ASGIWebsocketConnection.__call__",
        "2c3b1ce189651050",
        f"port the change to {_INLINE}.__call__ (one task instead of these two)",
    ),
    Fingerprint(
        "quart.asgi:ASGIWebsocketConnection.handle_messages",
        "b21db1ea9f05d8a7",
        "port the change to quartchat/internals/inline_socket.py's _DirectReceive.get "
        "(what a received event becomes; a disconnect ends the route)",
    ),
    Fingerprint(
        "quart.asgi:ASGIWebsocketConnection._create_websocket_from_scope",
        "0cbacd33c89d6101",
        f"check {_INLINE} (its receive is self.queue.get) and {_TRANSPORT}'s asgi_send "
        "(its send is partial(self.send_data, send))",
    ),
    Fingerprint(
        "quart.asgi:ASGIWebsocketConnection.handle_websocket",
        "1f80374976352e96",
        f"check {_INLINE}.__call__, which runs it in the ASGI call's own task",
    ),
    Fingerprint(
        "quart.asgi:ASGIWebsocketConnection.send_data",
        "d5f0d508a7f172d2",
        f"port the change to {_TRANSPORT}'s SocketWriter.send (the same ASGI event)",
    ),
    Fingerprint(
        "quart.wrappers.websocket:Websocket.__init__",
        "e300721fd4881ab2",
        f"check {_TRANSPORT}'s asgi_send, which reads the websocket's `_send`",
    ),
    Fingerprint(
        "quart.wrappers.websocket:Websocket.receive",
        "faea12226464e7cb",
        f"check {_INLINE}: a route's receive() must still await the receive it was given",
    ),
    # wsproto: the connection Hypercorn's stream drives
    Fingerprint(
        "wsproto.connection:Connection.__init__",
        "585be1f64648df3e",
        f"check {_GUARD}._close (writes `_state`) and {_TRANSPORT} (reads `_proto`)",
    ),
    Fingerprint(
        "wsproto.connection:Connection.send",
        "ac4c554a1960a362",
        f"check {_GUARD}._close (a close sent in REMOTE_CLOSING closes the connection) and "
        f"{_TRANSPORT}'s compressed path (frames made with it)",
    ),
    Fingerprint(
        "wsproto.connection:Connection.events",
        "b462281f42a99166",
        f"check {_GUARD}._handle_events, which takes a CloseConnection while the state is "
        "still OPEN for a frame wsproto could not parse",
    ),
    Fingerprint(
        "wsproto.frame_protocol:FrameProtocol.__init__",
        "16dc742f3c39fb7b",
        f"check {_TRANSPORT}'s SocketWriter, which reads its `extensions` (the enabled ones)",
    ),
    # aiosqlite: one thread hop per SQLite batch (commit.py through shortcuts.sqlite_thread)
    Fingerprint(
        "aiosqlite.core:Connection._execute",
        "ccf787434f78e6d0",
        "check quartchat/internals/shortcuts.py's sqlite_thread and quartchat/storage/commit.py's "
        "SQLite batch, which runs on the connection's thread through it",
    ),
    Fingerprint(
        "aiosqlite.core:Connection._conn",
        "37cf7cdad5ff63d1",
        "check quartchat/internals/shortcuts.py's sqlite_thread (the raw sqlite3 connection)",
    ),
    # Tortoise (internals/orm.py)
    Fingerprint(
        "tortoise:Tortoise.init",
        "8387f3c1007fb77d",
        "check quartchat/internals/orm.py's init (the _enable_global_fallback keyword)",
    ),
    Fingerprint(
        "tortoise.models:MetaInfo.__init__",
        "be20e2537941c6d3",
        "check quartchat/internals/orm.py's column (reads `fields_map`)",
    ),
)


def problems() -> list[str]:
    """What changed upstream since the reaches were written, one line per object."""
    return [problem for fingerprint in UPSTREAM if (problem := fingerprint.problem())]
