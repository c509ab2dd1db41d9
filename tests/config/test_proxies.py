"""Real client addresses behind trusted proxies (FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from quartchat.config.proxies import ForwardedMiddleware, TrustedProxies, parse_address
from quartchat.config.settings import ConfigError, Settings
from tests.support import served


async def _app(scope: Any, receive: Any, send: Any) -> None:
    pass


def rewritten(
    trusted: str,
    headers: list[tuple[bytes, bytes]],
    peer: str = "10.0.0.5",
    scope_type: str = "http",
) -> tuple[str, str]:
    scope: Any = {
        "type": scope_type,
        "scheme": "http" if scope_type == "http" else "ws",
        "client": (peer, 40000),
        "headers": headers,
    }
    ForwardedMiddleware(_app, TrustedProxies.parse(trusted)).rewrite(scope)
    return scope["client"][0], scope["scheme"]


def test_a_trusted_proxys_x_real_ip_and_proto_are_the_client() -> None:
    headers = [(b"x-real-ip", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    assert rewritten("10.0.0.0/8", headers) == ("203.0.113.9", "https")
    assert rewritten("10.0.0.5", headers, scope_type="websocket") == ("203.0.113.9", "wss")


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    headers = [(b"x-real-ip", b"203.0.113.9"), (b"x-forwarded-for", b"198.51.100.1")]
    assert rewritten("", headers) == ("10.0.0.5", "http")
    assert rewritten("192.168.0.0/16", headers) == ("10.0.0.5", "http")


def test_the_right_most_untrusted_forwarded_for_hop_is_the_client() -> None:
    # the client lied about 1.1.1.1; 198.51.100.7 reached our first proxy, 10.0.0.9
    headers = [(b"x-forwarded-for", b"1.1.1.1, 198.51.100.7"), (b"x-forwarded-for", b"10.0.0.9")]
    assert rewritten("10.0.0.0/8", headers)[0] == "198.51.100.7"
    # trusting everyone, only the hop the peer itself added is believed
    assert rewritten("*", headers)[0] == "10.0.0.9"


def test_rfc_7239_forwarded() -> None:
    headers = [(b"forwarded", b'for=1.1.1.1, for="[2001:db8::7]:4711";proto=https')]
    assert rewritten("10.0.0.5", headers) == ("2001:db8::7", "https")


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-real-ip", b"not an address")],
        [(b"x-forwarded-for", b"198.51.100.7, garbage")],
        [(b"forwarded", b"for=unknown")],
        [(b"x-real-ip", b"\xff\xfe")],
        [(b"x-forwarded-proto", b"gopher")],
    ],
)
def test_malformed_values_fall_back_to_the_peer(headers: list[tuple[bytes, bytes]]) -> None:
    assert rewritten("*", headers) == ("10.0.0.5", "http")


def test_addresses_as_proxies_write_them() -> None:
    assert str(parse_address("198.51.100.7:5678")) == "198.51.100.7"
    assert str(parse_address('"[::1]:80"')) == "::1"
    assert parse_address("_hidden") is None


def test_setting_defaults_to_nobody_except_on_railway() -> None:
    assert Settings.from_env({}).forwarded_allow_ips == ""
    assert (
        Settings.from_env({"RAILWAY_PUBLIC_DOMAIN": "x.up.railway.app"}).forwarded_allow_ips == "*"
    )
    railway_opt_out = {"RAILWAY_ENVIRONMENT": "production", "FORWARDED_ALLOW_IPS": ""}
    assert Settings.from_env(railway_opt_out).forwarded_allow_ips == ""
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
        Settings.from_env({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.example"})


def test_a_zone_is_no_part_of_the_address() -> None:
    assert str(parse_address("fe80::1%eth0")) == "fe80::1"
    assert str(parse_address("[fe80::1%25eth0]:443")) == "fe80::1"


@pytest.mark.server
async def test_a_forwarded_zone_neither_splits_a_budget_nor_reaches_the_log(
    tmp_path: Path,
) -> None:
    # A trusted proxy that passes on what the client wrote: varying the zone of one
    # address must not make one client look like many.
    limits = {
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "CREATIONS_BURST": "2",
        "CREATIONS_PER_MINUTE": "1",
    }
    async with served(tmp_path, env=limits, timeout=30) as (server, client):
        statuses = []
        for zone in ("1", "2", "\x85evil"):
            headers = [(b"X-Real-IP", f"fe80::1%{zone}".encode("latin1"))]
            response = await client.post("/users", json={"username": "z"}, headers=headers)
            statuses.append(response.status_code)
        assert statuses == [201, 201, 429]
        deadline = asyncio.get_running_loop().time() + 10
        while server.log().count('"POST /users') < 3:
            assert asyncio.get_running_loop().time() < deadline, server.log()
            await asyncio.sleep(0.05)
        lines = [line for line in server.log().splitlines() if '"POST /users' in line]
        assert all("] fe80::1 - " in line for line in lines), lines
