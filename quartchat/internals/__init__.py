"""Every reach past a public API of Quart, Hypercorn, wsproto or aiosqlite, in one place.

Nothing outside this package touches a framework's private names; this package imports
from the rest of quartchat only its settings and wire-format types. Each reach is listed
here with what it replaces and the upstream version it was written against; startup
checks them against the installed libraries (`shortcuts`).

- `transport`: frames written straight to Hypercorn 0.18's TCP writer, one write per
  batch (`WSStream`, `H11Protocol.send`, `TCPServer.writer`, wsproto 1.2's
  `Connection._proto`); connections reset with SO_LINGER; `Handshake.extensions`
  cleared to decline permessage-deflate. Quart 0.22's `Websocket._send`.
- `frameguard`: `GuardedWSStream`, a fork of Hypercorn 0.18's
  `WSStream._handle_events`, installed as `hypercorn.protocol.h11.WSStream`; writes
  wsproto's private `Connection._state` to close on a protocol error.
- `headguard`: `GuardedH11Protocol`, Hypercorn 0.18's `H11Protocol` with an
  `h11.Connection` subclass (h11 0.16's public `trailing_data`) that measures a request
  head before parsing it, installed as `hypercorn.protocol.H11Protocol`.
- `inline_socket`: Quart 0.22's `ASGIWebsocketConnection` built without its
  `__init__`, its receive queue replaced by the server's own.
- `accesslog`: Hypercorn 0.18's `Logger` with lazily computed access-log atoms.
- `shortcuts`: aiosqlite 0.22's private `Connection._execute` and `_conn` (one thread
  hop per SQLite batch), and the startup check of all of the above.
"""
