"""permessage-deflate that inflates no message past the size limit (`WS_COMPRESSION=true`).

wsproto's `PerMessageDeflate` (wsproto 1.3, `wsproto/extensions.py`) inflates each
frame's payload whole (`frame_inbound_payload_data`, `frame_inbound_complete`), and
Hypercorn 0.18 checks a message's size only after (`WebsocketBuffer.extend`): a few
KiB of deflated zeros become gigabytes (measured: one socket refused 1009 still
inflated 18-33 GB of the rest of its frame, 43-77 % of a core). `BoundedDeflate`
forks those two methods to inflate with zlib's `max_length`: no message is inflated
past `max_message_size` (plus one byte to know it was over). Past it, the extension
is `refused`: the frame guard closes the socket 1009 (frameguard.py), and every later
data frame is dropped without being inflated; control frames (the client's close
reply) still pass.

Installed as `hypercorn.protocol.ws_stream.PerMessageDeflate`, the name Hypercorn's
`Handshake.accept` builds the offered extension from; `limit` sets the size on the
extension a connection negotiated.
"""

from __future__ import annotations

import zlib

from hypercorn.config import Config
from wsproto.connection import Connection
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.2: removed by the sender


class BoundedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, inflating at most `max_message_size` per message."""

    max_message_size: int = Config.websocket_max_message_size
    refused = False
    _inflated = 0  # bytes inflated of the current message
    _text = False  # the current message is text: what is handed on must stay UTF-8
    _tail = b""  # the end of the text handed on that starts an unfinished character

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._text = opcode is Opcode.TEXT
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self.refused and self._inbound_is_compressible:
            return b""
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        try:
            return self._inflate(bytes(data))
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        # Unlike wsproto 1.3, a control frame between a message's frames (RFC 6455 5.4)
        # leaves the message's state alone.
        if not fin or not self._inbound_is_compressible:
            return None
        compressed, self._inbound_compressed = self._inbound_compressed, None
        try:
            if not compressed or self.refused:
                return None
            data = self._inflate(SYNC_FLUSH_TAIL)
            if not self.refused:
                data += self._inflate_rest()
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        finally:
            self._inflated, self._tail = 0, b""
        no_context_takeover = (
            self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        )
        if no_context_takeover:
            self._decompressor = None
        return data

    def _inflate(self, data: bytes) -> bytes:
        """Inflate `data`, stopping one byte past what the message may still hold."""
        assert self._decompressor is not None
        room = self.max_message_size - self._inflated
        inflated = self._decompressor.decompress(data, room + 1)
        if len(inflated) > room:
            return self._refuse()
        self._inflated += len(inflated)
        if self._text:
            self._tail = _unfinished_character(self._tail + inflated[-4:])
        return inflated

    def _inflate_rest(self) -> bytes:
        """What zlib still holds once all input is in: nothing beyond its window."""
        assert self._decompressor is not None
        rest = self._decompressor.flush()
        if len(rest) > self.max_message_size - self._inflated:
            return self._refuse()
        return rest

    def _refuse(self) -> bytes:
        """Stop inflating for good; hand on what finishes the text's last character, so
        that wsproto's UTF-8 check does not turn the 1009 into a 1007."""
        self.refused = True
        self._decompressor = None
        return _finishing(self._tail)


def _unfinished_character(end: bytes) -> bytes:
    """The bytes at the end of UTF-8 text that start a character it does not finish."""
    for back in range(1, min(len(end), 4) + 1):
        byte = end[-back]
        if byte < 0x80:
            return b""
        if byte >= 0xC0:  # a lead byte: how long is its character?
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return end[-back:] if back < length else b""
    return b""


def _finishing(unfinished: bytes) -> bytes:
    """Continuation bytes that finish the character `unfinished` starts (any valid one:
    the message is being refused, its content is never read)."""
    if not unfinished:
        return b""
    lead = unfinished[0]
    length = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    missing = length - len(unfinished)
    # The second byte's range depends on the lead (RFC 3629 4): E0 needs A0-BF, F0 90-BF.
    first = {0xE0: 0xA0, 0xF0: 0x90}.get(lead, 0x80) if len(unfinished) == 1 else 0x80
    return bytes([first]) + b"\x80" * (missing - 1)


def limit(connection: Connection, max_message_size: int) -> BoundedDeflate | None:
    """Bound the permessage-deflate a connection negotiated, if it did (wsproto's private
    `Connection._proto` holds the extensions in use)."""
    proto = getattr(connection, "_proto", None)
    for extension in getattr(proto, "extensions", ()):
        if isinstance(extension, BoundedDeflate):
            extension.max_message_size = max_message_size
            return extension
    return None
