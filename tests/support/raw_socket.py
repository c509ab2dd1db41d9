"""A bare RFC 6455 client for what `websockets` hides."""

from __future__ import annotations

import functools
import os
import socket
import zlib

from tests.support.protocol_check import check_close_code, check_frame

__all__ = ["RawWebSocket"]

DEFLATE_CHUNK = 16 << 20  # what one piece of a deflate bomb inflates to


class RawWebSocket:
    """A bare RFC 6455 client over a plain socket, for what `websockets` hides: a peer
    that stops reading, and control frames (server pings) as they arrive."""

    def __init__(
        self, port: int, path: str, receive_buffer: int | None = None, headers: str = ""
    ) -> None:
        """Open the socket with `headers` (lines ending in CRLF) added to the handshake;
        `self.response` is the server's 101 response head."""
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        self.response, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert self.response.startswith(b"HTTP/1.1 101"), self.response

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the TCP connection")
        return chunk

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame (server frames are unmasked); a text frame
        or a close code that `/asyncapi.json` does not describe fails the test."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._take(2), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8), "big")
        opcode, payload = first & 0x0F, self._take(length)
        if opcode == 0x1:
            check_frame(payload)
        elif opcode == 0x8 and len(payload) >= 2:
            check_close_code(int.from_bytes(payload[:2], "big"))
        return opcode, payload

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool = True,
    ) -> None:
        """Send one frame exactly as given (client frames must be masked; `mask=False`
        and `rsv` bits break the protocol on purpose). Payloads under 126 bytes."""
        assert len(payload) < 126
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        if not mask:
            self.sock.sendall(bytes([first, len(payload)]) + payload)
            return
        key = os.urandom(4)
        masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(bytes([first, 0x80 | len(payload)]) + key + masked)

    def read_until_close(self, timeout: float, counting: int = 0x1) -> tuple[int, int | None]:
        """Read frames until a close frame: (frames of opcode `counting` before it, text
        by default; close code), or (that count, None) if the server reset or closed the
        connection without one."""
        self.sock.settimeout(timeout)
        counted = 0
        while True:
            try:
                opcode, payload = self.read_frame()
            except ConnectionError:
                return counted, None
            if opcode == 0x8:
                return counted, int.from_bytes(payload[:2], "big")
            counted += opcode == counting

    def send_head(self, opcode: int, length: int, *, rsv: int = 0) -> None:
        """Send a final frame's header announcing `length` bytes, with a zero mask: the
        caller then streams the payload as it is with `sock.sendall`."""
        self.sock.sendall(_head(opcode, length, rsv))

    def send_deflate_bomb(self, inflated: int) -> int:
        """Send one text frame marked compressed (RSV1) whose payload, deflated zeros,
        inflates to `inflated` bytes (about a thousand times its size); returns the
        bytes sent before the server closed or reset the connection."""
        chunk = _deflated_zeros()
        repeats = max(1, inflated // DEFLATE_CHUNK)
        sent = 0
        try:
            self.send_head(0x1, len(chunk) * repeats, rsv=0b100)
            for _ in range(repeats):
                self.sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return sent

    def send_close(self, code: int = 1000) -> None:
        """Send a close frame with `code`."""
        self._send_frame(0x8, code.to_bytes(2, "big"))

    def send_text(self, text: str) -> None:
        """Send one text frame, however long."""
        self._send_frame(0x1, text.encode())

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        # Masked, as a client's frames must be; a zero mask keeps the payload as it is.
        self.sock.sendall(_head(opcode, len(payload)) + payload)

    def established_on_server(self) -> bool:
        """Whether the kernel still has this connection ESTABLISHED (IPv4 loopback)."""
        local = f"{self.sock.getsockname()[1]:04X}"
        with open("/proc/net/tcp") as table:
            for line in table.read().splitlines()[1:]:
                fields = line.split()
                # the server's end of this connection: its remote port is our local port
                if fields[2].endswith(f":{local}") and fields[3] == "01":
                    return True
        return False

    def close(self) -> None:
        self.sock.close()


def _head(opcode: int, length: int, rsv: int = 0) -> bytes:
    """A final, masked frame's header with a zero mask (the payload goes as it is)."""
    if length < 126:
        size = bytes([0x80 | length])
    elif length < 1 << 16:
        size = bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        size = bytes([0x80 | 127]) + length.to_bytes(8, "big")
    return bytes([0x80 | (rsv << 4) | opcode]) + size + bytes(4)


@functools.cache
def _deflated_zeros() -> bytes:
    """DEFLATE_CHUNK zeros, raw-deflated and ending in a full flush: the piece repeats
    as it is, each copy inflating to the same zeros (RFC 7692's raw deflate stream)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(DEFLATE_CHUNK)) + compressor.flush(zlib.Z_FULL_FLUSH)
