"""Every reach past a public API of Quart, Hypercorn, wsproto, aiosqlite or Tortoise.

Nothing outside this package touches a framework's private names or drives its objects
past their public API; this package imports from the rest of quartchat only the
operator's configuration (settings, logs) and the wire format (frames, the frame
budget). The reaches were written against the lock's Quart 0.22.0, Hypercorn 0.18.0,
wsproto 1.3.2, aiosqlite 0.22.1 and tortoise-orm 1.1.9. Each upstream function or class
one forks or depends on by shape is hashed in `fingerprints`
(tests/internals/test_fingerprints.py names what to re-read when one changes);
`shortcuts` checks at startup what the installed libraries still have and, under
`quartchat serve`, the startup probe (quartchat/process/probe.py) proves the socket and
SQLite paths by behaviour before listening, refusing to start if one fails; each module
has unit tests with fakes in tests/internals/. Gains come from the commits that brought
each reach and the closing notes (`issues stops`); A-E are bench/'s scenarios.

1. `transport.SocketWriter`: a socket's frames written straight to Hypercorn's TCP
   writer. Replaces Quart's `websocket.send` (a signal, an accept check and a sleep per
   frame) and Hypercorn's chain `WSStream.app_send` -> `H11Protocol.stream_send` ->
   `TCPServer.protocol_send` (wsproto framing, an event and a lock per frame). Upstream:
   quart/wrappers/websocket.py `Websocket.__init__` (`_send`, a partial of quart/asgi.py
   `ASGIWebsocketConnection.send_data`); hypercorn/protocol/ws_stream.py `WSStream`
   (`connection`, `state`, `closed`, `send`); hypercorn/protocol/h11.py
   `H11Protocol.stream_send`; hypercorn/asyncio/tcp_server.py `TCPServer.protocol_send`
   and `writer`; wsproto/connection.py `Connection._proto` and frame_protocol.py
   `FrameProtocol.extensions`. Gain: a broadcast frame encoded once for every socket and
   a socket's waiting frames in one write (c187a31, with the rest of that send path: A
   0.40-0.54x the bare Quart + Hypercorn peer's CPU per delivery); the writer instead of
   the chain, A 9.2 -> 8.8 us per delivery (00229dc); frames put in the buffer at once
   and no drain task per idle socket, 30.9 -> 28.7 KiB and 2.9 -> 2.0 tasks per idle
   socket (fcd1de0). Without it: frames go one by one through `websocket.send`.
2. `transport.abort_connection`: a stalled connection reset (SO_LINGER 0, then the
   asyncio transport's `abort()`), reached as `stream.send.__self__.send.__self__.writer`
   (the H11Protocol, then the TCPServer). Replaces nothing: ASGI cannot drop a
   connection. Gain: a stalled client, and one that leaves a 1009 unanswered, is reset
   at CLOSE_TIMEOUT; `abort()` alone left a FIN-WAIT-1 holding 2.8 MB (337f297, stop
   17's note); D drops its stalled client at 7.8-8.1 s. Without it: `abort()` reports
   False and a stalled connection keeps its buffers until the kernel gives up.
3. `transport.refuse_compression`: `WS_COMPRESSION=false` declines permessage-deflate
   by clearing `Handshake.extensions` before the accept. Replaces hypercorn/protocol/
   ws_stream.py `Handshake.accept`, which accepts it whenever a client offers it (every
   browser does). Gain: 50 browser-like clients had the server spend 88% of its time
   compressing each broadcast once per socket (py-spy, 350c4ef). Without it: every
   browser's socket is compressed, at a zlib pair per socket.
4. `frameguard.GuardedWSStream`: a fork of hypercorn/protocol/ws_stream.py
   `WSStream._handle_events` (and a wrapper of `app_send`), installed as hypercorn/
   protocol/h11.py's `WSStream` (the name `H11Protocol._create_stream` builds from); it
   writes wsproto/connection.py's private `Connection._state` to send a close for a
   frame wsproto could not parse. Gain: a 1009 close completes in 5.3-15.6 ms instead of
   19.9 s and the socket leaves its room at once (9f0d925); next to a PING flooder a
   neighbour's round trip is 2.5 / 28.8 ms (median / p99) instead of 5,056 / 5,362 ms,
   the flooder closed 1008 (bench/flood.py, 41bf07c); a protocol error gets its 1007 or
   1002 close frame, where a browser saw 1006. Without it: `install` returns False and
   Hypercorn's own handling comes back, with all three faults.
5. `inline_socket.InlineWebsocketConnection`: Quart's websocket connection built without
   its `__init__` and run in one task, its receive queue replaced by the ASGI server's.
   Replaces quart/asgi.py `ASGIWebsocketConnection.__init__`, `__call__` (a receiver
   task and the route's task) and `handle_messages` (a second queue and a signal per
   frame); relies on `_create_websocket_from_scope` reading `self.queue.get`. Gain: per
   idle socket 36.7 -> 30.9 KiB and 4.9 -> 2.9 tasks, and no second task and queue per
   received frame (76bd68d). Without it: Quart's own connection, at that cost. Under a
   Quart that receives otherwise (0.23 did) the handshake succeeds and the route never
   reads a frame: hence the fingerprints, the name check of `ASGIWebsocketConnection.queue`,
   `_create_websocket_from_scope`, `handle_websocket` and `Websocket._receive`, and the
   startup probe.
6. `accesslog.AccessLogger`: Hypercorn's `Logger` (`Config.logger_class`) whose `atoms`
   reproduce hypercorn/logging.py `AccessLogAtoms`, each computed on lookup. Replaces
   `AccessLogAtoms`, which copies every header and `os.environ` per line. Gain: 6-10% of
   a reconnect storm's server CPU under py-spy (ce2fbd7). Without it: the same lines, at
   that cost.
7. `worker.serve_on`: hypercorn/asyncio/run.py `worker_serve` and hypercorn/utils.py
   `wrap_app`, called as hypercorn/asyncio/__init__.py `serve` calls them but on
   listening sockets `quartchat serve` opened, so it can see them close. Gain: on
   SIGTERM the listeners close before any socket gets its 1012: a dying process accepted
   12 reconnecting handshakes per test run before, none after (20bf548, stop 17's note).
   Without it: `serve` could not close the listeners first; if `worker_serve` goes,
   `quartchat serve` fails at import.
8. `shortcuts.sqlite_thread`: aiosqlite/core.py's private `Connection._execute` and
   `_conn`, so commit.py runs a whole SQLite batch in one call on aiosqlite's thread.
   Replaces one await, one thread hop, per statement (d42692c). Gain, measured for this
   list on the shared 2-core VM (load 10-13; process CPU, both threads, per batch of
   BEGIN, SELECT, INSERT, UPDATE, COMMIT): 105-123 us instead of 470-515 with
   synchronous=OFF (wall 0.30-0.58 ms instead of 1.9-2.1), 325-432 us instead of
   729-842 with synchronous=FULL (wall 4-7 ms either way: the fsync). Without it: a
   SQLite server refuses to start (its SQL has no public-API fallback).
9. `orm.column`, `orm.init`: tortoise/models.py `MetaInfo.fields_map` (read as
   `Model._meta`) and tortoise/__init__.py `Tortoise.init(_enable_global_fallback=True)`.
   Not speed reaches, gain not measured: commit.py converts what its plain SQL reads and
   writes with Tortoise's own fields, and Hypercorn's connection tasks see the database
   the lifespan task opened. Without them: startup fails.
10. `http11.HTTP11Protocol`: hypercorn/protocol/h11.py `H11Protocol._check_protocol`
   overridden so that neither `Upgrade: h2c` nor HTTP/2's preface switches a connection
   to HTTP/2 (h2c is served as HTTP/1.1; the preface is answered 400 and closed);
   installed as `hypercorn.protocol.H11Protocol` and `.H2Protocol`, the names
   `ProtocolWrapper.__init__` builds from, and `Config.alpn_protocols` set to http/1.1.
   Not a speed reach: HTTP/2 streams (RFC 8441 sockets) went around `GuardedWSStream`
   and transport.py (2 sockets had 358,000-451,000 PINGs answered in 6 s, a neighbour's
   round trip 0.65-2 s). Without it: `frameguard.install` reports the guard OFF.
11. `deflate.BoundedDeflate`: a fork of wsproto/extensions.py
   `PerMessageDeflate.frame_inbound_payload_data` and `frame_inbound_complete`,
   inflating at most `websocket_max_message_size` + 1 bytes per message (zlib
   `max_length`); installed as `hypercorn.protocol.ws_stream.PerMessageDeflate` (the
   name `Handshake.accept` uses), its limit set through wsproto's private
   `Connection._proto.extensions`; `GuardedWSStream` also overrides `WSStream._accept`
   to bound the negotiated extension and closes 1009 when it refuses. Not a speed
   reach: upstream inflated whole frames before Hypercorn checked the size (18-33 GB
   after a 1009; a 1 GiB bomb now costs 0.01 s of CPU). Without it: compressed sockets
   (`WS_COMPRESSION=true`) inflate without bound.
12. `loopback`: Hypercorn 0.18's `TCPServer(app, loop, config, context, state, reader,
   writer)` and `WorkerContext`, built as hypercorn/asyncio/run.py `worker_serve` builds
   each accepted connection, to serve the startup probe's loopback connection
   (quartchat/process/probe.py) with the very code that serves clients. Runs once at startup,
   no speed gain; without it the probe cannot prove the socket path.
13. `headguard.HeadGuardedConnection`: an `h11.Connection` (h11 0.16) that measures the
   request head it holds (its public `trailing_data`) before each `next_event` parses
   one, and raises h11's own 431 error past `MAX_REQUEST_HEADERS` lines or
   `h11_max_incomplete_size` bytes; `HTTP11Protocol.__init__` (item 10) gives every
   connection one instead of hypercorn/protocol/h11.py's `h11.Connection`. Not a speed
   reach: h11 parses a whole head at once however large, and Hypercorn reads 64 KiB at a
   time, so 3,500 headers cost 13-15 ms (25 ms on the loaded VM) of CPU on any path; now
   0.5 ms and a 431. Without it: every head is parsed, as before (reported OFF).

May import: wire, config.
"""
