"""Real client addresses behind reverse proxies (`FORWARDED_ALLOW_IPS`).

A request or socket whose TCP peer is a trusted proxy gets its client address from
`X-Real-IP`, else from the right-most untrusted hop of `X-Forwarded-For`, else from the
RFC 7239 `Forwarded` header, and its scheme from `X-Forwarded-Proto` (or `Forwarded`'s
`proto`). Headers from any other peer are ignored, and so are values that are not
addresses: the peer's own address is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope
from quart import Quart

IPAddress = IPv4Address | IPv6Address
# Variables Railway injects into every deployment: there the only way in from the
# internet is Railway's edge proxy, whose addresses Railway does not publish.
RAILWAY_VARIABLES = ("RAILWAY_PUBLIC_DOMAIN", "RAILWAY_ENVIRONMENT", "RAILWAY_ENVIRONMENT_NAME")
_SCHEMES = {
    "http": {"http": "http", "https": "https", "ws": "http", "wss": "https"},
    "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"},
}


def default_forwarded_allow_ips(env: Mapping[str, str]) -> str:
    """`*` on Railway (its edge is every peer the container has), else nobody."""
    return "*" if any(env.get(name, "").strip() for name in RAILWAY_VARIABLES) else ""


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The peers whose forwarding headers are believed: `everyone`, or these networks."""

    networks: tuple[Any, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, raw: str) -> TrustedProxies:
        """`*`, or comma-separated addresses and CIDRs (`10.0.0.0/8`, `::1`)."""
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if "*" in parts:
            return cls(everyone=True)
        networks = []
        for part in parts:
            try:
                networks.append(ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an address or a CIDR") from None
        return cls(networks=tuple(networks))

    @property
    def anyone(self) -> bool:
        return self.everyone or bool(self.networks)

    def trusts(self, address: IPAddress) -> bool:
        if self.everyone:
            return True
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def parse_address(raw: str) -> IPAddress | None:
    """An address as proxies write it (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`,
    `"[::1]"`; a zone is dropped), or None if it is none (`unknown`, an obfuscated name,
    garbage)."""
    text = raw.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    # A zone (`fe80::1%eth0`) names an interface of whoever wrote the address, nothing to
    # us, and is free text: kept, a client could pass for as many clients as it likes.
    text = text.partition("%")[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every comma-separated value of a header, across all its lines, in order."""
    values: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            values.extend(part.strip() for part in value.decode("latin1").split(","))
    return values


def _forwarded_params(headers: Iterable[tuple[bytes, bytes]], param: str) -> list[str]:
    """The `param=` values of RFC 7239 `Forwarded` elements, in order ("" if absent)."""
    found = []
    for element in _header_values(headers, b"forwarded"):
        value = ""
        for pair in element.split(";"):
            key, _, raw = pair.partition("=")
            if key.strip().lower() == param:
                value = raw.strip().strip('"')
        found.append(value)
    return found


class ForwardedClients:
    """Who the client and its scheme really are, given the peer and the headers."""

    def __init__(self, trusted: TrustedProxies) -> None:
        self.trusted = trusted

    def client(self, headers: Iterable[tuple[bytes, bytes]]) -> IPAddress | None:
        headers = list(headers)
        real_ip = _header_values(headers, b"x-real-ip")
        if len(real_ip) == 1:
            address = parse_address(real_ip[0])
            # A listed proxy as X-Real-IP means another proxy is in front of that one:
            # the chain in X-Forwarded-For then goes further.
            if address is not None and (self.trusted.everyone or not self.trusted.trusts(address)):
                return address
        hops = _header_values(headers, b"x-forwarded-for") or _forwarded_params(headers, "for")
        return self._right_most_untrusted(hops)

    def _right_most_untrusted(self, hops: list[str]) -> IPAddress | None:
        if self.trusted.everyone:
            # Every address would be "trusted", and the left-most hop is whatever the
            # client wrote: only the hop the peer itself added can be believed.
            hops = hops[-1:]
        address = None
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return None  # what lies beyond an unreadable hop cannot be trusted
            if not self.trusted.trusts(address):
                return address
        return address  # every hop is a proxy: the farthest one is the client

    def scheme(self, scope_type: str, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        headers = list(headers)
        protos = _header_values(headers, b"x-forwarded-proto") or _forwarded_params(
            headers, "proto"
        )
        if not protos:
            return None
        return _SCHEMES[scope_type].get(protos[-1].lower())


class ForwardedMiddleware:
    """ASGI middleware: from a trusted peer, `scope["client"]` and `scope["scheme"]`
    become the client's. The scope is changed in place, because Hypercorn's access log
    reads the very dict it handed to the app."""

    def __init__(self, app: ASGIFramework, trusted: TrustedProxies) -> None:
        self.app = app
        self.forwarded = ForwardedClients(trusted)
        # peer host -> trusted: a reconnect storm arrives from a few proxies, and parsing
        # their address for every handshake was most of this middleware's cost
        self._peers: dict[str, bool] = {}

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if self.forwarded.trusted.anyone and scope["type"] in {"http", "websocket"}:
            self.rewrite(scope)
        await self.app(scope, receive, send)

    def rewrite(self, scope: Any) -> None:
        peer = scope.get("client")
        if not peer or not self._trusted_peer(str(peer[0])):
            return
        headers = scope["headers"]
        client = self.forwarded.client(headers)
        if client is not None:
            scope["client"] = (str(client), 0)
        scheme = self.forwarded.scheme(scope["type"], headers)
        if scheme is not None:
            scope["scheme"] = scheme

    def _trusted_peer(self, host: str) -> bool:
        trusted = self._peers.get(host)
        if trusted is None:
            address = parse_address(host)
            trusted = address is not None and self.forwarded.trusted.trusts(address)
            if len(self._peers) >= 4096:
                self._peers.clear()
            self._peers[host] = trusted
        return trusted


def init_app(app: Quart, forwarded_allow_ips: str) -> None:
    """Wrap the app so that every request and socket sees its real client."""
    trusted = TrustedProxies.parse(forwarded_allow_ips)
    if trusted.anyone:
        app.asgi_app = ForwardedMiddleware(app.asgi_app, trusted)  # type: ignore[method-assign]
