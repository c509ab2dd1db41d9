"""HTTP/1.1 only: no client ever gets an HTTP/2 connection from Hypercorn.

Hypercorn 0.18 also speaks cleartext HTTP/2, and WebSockets over it (RFC 8441): a
connection that opens with HTTP/2's preface (`PRI * HTTP/2.0`, "prior knowledge"), a
request with `Upgrade: h2c`, or a TLS handshake that picks `h2` by ALPN is handed to its
`H2Protocol`, whose streams are not `GuardedWSStream` (frameguard.py) and whose frames
transport.py cannot write. Measured over HTTP/2 before this module: 358,000-451,000
PINGs answered in 6 s by 2 sockets (HTTP/1.1 closes the same flood 1008 after ~70), a
neighbour's round trip 0.65-2 s, a socket closed 1009 left in its room. HTTP/2 and TLS
belong to the edge in front (Railway's, nginx), which speaks HTTP/1.1 to us anyway.

What `install` replaces, in Hypercorn 0.18:

- `hypercorn/protocol/h11.py`, `H11Protocol._check_protocol`: upstream answers
  `Upgrade: h2c` with 101 and raises `H2CProtocolRequiredError`, and raises
  `H2ProtocolAssumedError` on the preface; `ProtocolWrapper.handle`
  (`hypercorn/protocol/__init__.py`) catches both and switches the connection to
  `H2Protocol`. `HTTP11Protocol` raises neither: an h2c upgrade is served as the plain
  HTTP/1.1 request it also is (the Upgrade header ignored), and the preface is answered
  `400 INVALID_REQUEST` in HTTP/1.1 and the connection closed.
- `hypercorn.protocol.H11Protocol` and `.H2Protocol`, the names `ProtocolWrapper.__init__`
  builds a connection's protocol from (the second for ALPN `h2`), are both
  `HTTP11Protocol`; `Config.alpn_protocols`' default offers only `http/1.1`, so a TLS
  client is not told it may speak HTTP/2 (a hypercorn.toml that lists `h2` gets the 400).

HTTP/3 needs `quic_bind` and aioquic, neither of which quartchat uses.
"""

from __future__ import annotations

import contextlib
from itertools import chain
from typing import Any

import h11
import orjson
from hypercorn import protocol
from hypercorn.config import Config
from hypercorn.events import Closed, Event
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol

from quartchat.internals.headguard import HeadGuardedConnection

REFUSAL = orjson.dumps(
    {
        "code": "INVALID_REQUEST",
        "detail": "HTTP/2 is not served here: speak HTTP/1.1 (TLS and HTTP/2 end at the proxy)",
    }
)


class _RefusedError(Exception):
    """Ends the handling of the read that brought HTTP/2's preface."""


class HTTP11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol, never switching a connection to HTTP/2, whose
    request heads are measured before they are parsed (headguard.py)."""

    refused = False
    guards_heads = True  # what headguard.install looks for

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = HeadGuardedConnection(self.config.h11_max_incomplete_size)

    async def handle(self, event: Event) -> None:
        if self.refused:
            return  # the connection is closing; what the client still sends is dropped
        with contextlib.suppress(_RefusedError):
            await super().handle(event)

    async def _check_protocol(self, event: h11.Request) -> None:
        if event.method == b"PRI" and event.target == b"*" and event.http_version == b"2.0":
            await self._refuse_http2()
            raise _RefusedError
        # `Upgrade: h2c` (or anything else but websocket): an ordinary HTTP/1.1 request.

    async def _refuse_http2(self) -> None:
        self.refused = True
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(REFUSAL)).encode()),
            (b"connection", b"close"),
        ]
        headers = list(chain(headers, self.config.response_headers("h11")))
        await self._send_h11_event(h11.Response(status_code=400, headers=headers))
        await self._send_h11_event(h11.Data(data=REFUSAL))
        await self._send_h11_event(h11.EndOfMessage())
        await self.send(Closed())


def install() -> bool:
    """Have Hypercorn build every connection as `HTTP11Protocol`; False (Hypercorn's own
    HTTP/2 stays) under a Hypercorn it was not written for."""
    if getattr(protocol, "H11Protocol", None) not in (H11Protocol, HTTP11Protocol):
        return False
    if getattr(protocol, "H2Protocol", None) not in (H2Protocol, HTTP11Protocol):
        return False
    if not callable(getattr(H11Protocol, "_check_protocol", None)):
        return False
    setattr(protocol, "H11Protocol", HTTP11Protocol)  # noqa: B010 (not re-exported)
    setattr(protocol, "H2Protocol", HTTP11Protocol)  # noqa: B010 (ALPN h2 as HTTP/1.1)
    Config.alpn_protocols = ["http/1.1"]
    return True
