"""Test hosts in network namespaces of the test's own (`ip netns`, veth pairs): two
`quartchat serve` instances, a Redis and a PostgreSQL, each on a host of its own, with
a point-to-point link per pair that talks, so a test can cut or slow one link.

Addresses are 10.203.<k>.0/24 split into /30 links; they exist only inside the
namespaces made here and on the root side of the client links, and are removed with
them. Imported on its own (`from tests.support.netns import ...`): it needs root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.databases import PrivatePostgres
from tests.support.servers import RunningServer, wait_until_healthy

__all__ = ["Cluster", "NetnsServer", "cluster", "netns_unavailable"]

PORT = 8000  # each instance has a host of its own: no port to share


def ip(*args: str, namespace: str | None = None, tool: str = "ip") -> None:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    try:
        subprocess.run([*prefix, tool, *args], check=True, capture_output=True, timeout=10)
    except subprocess.CalledProcessError as error:
        raise AssertionError(f"{tool} {' '.join(args)}: {error.stderr.decode()}") from None


def netns_unavailable() -> str | None:
    """Why test hosts cannot be made here, or None when they can."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"qcprobe{uuid.uuid4().hex[:6]}"
    try:
        ip("netns", "add", probe)
    except AssertionError as error:
        return f"`ip netns add` failed: {error}"
    subprocess.run(["ip", "netns", "del", probe], check=False, capture_output=True)
    return None


@dataclass
class NetnsServer(RunningServer):
    """A `quartchat serve` on a test host: reached at `host`, not at 127.0.0.1."""

    host: str = ""

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


@dataclass
class Link:
    """A veth pair between two hosts (None: the root namespace, where clients run)."""

    name: str  # interface name on side a; side b is name + "p"
    a: str | None
    b: str
    a_address: str
    b_address: str

    def set(self, up: bool) -> None:
        """Cut (down) or heal (up) the link from b's side: a's interface stays up and
        its packets vanish, as on a partition, rather than failing at once."""
        ip("link", "set", f"{self.name}p", "up" if up else "down", namespace=self.b)

    def shape(self, rate: str, latency: str) -> None:
        """A slow link both ways: a token bucket of `rate`, whose queue holds at most
        `latency` of traffic and drops what does not fit (this kernel has no netem)."""
        for device, namespace in ((self.name, self.a), (f"{self.name}p", self.b)):
            ip(
                *("qdisc", "replace", "dev", device, "root", "tbf", "rate", rate),
                *("burst", "1540", "latency", latency),
                namespace=namespace,
                tool="tc",
            )

    def unshape(self) -> None:
        for device, namespace in ((self.name, self.a), (f"{self.name}p", self.b)):
            with contextlib.suppress(AssertionError):
                ip("qdisc", "del", "dev", device, "root", namespace=namespace, tool="tc")


@dataclass
class Cluster:
    tag: str
    subnet: int
    workdir: Path
    namespaces: list[str] = field(default_factory=list)
    links: dict[str, Link] = field(default_factory=dict)
    redis: subprocess.Popen[bytes] | None = None
    postgres: PrivatePostgres | None = None
    servers: dict[str, NetnsServer] = field(default_factory=dict)

    def host(self, name: str) -> str:
        return f"qc{self.tag}{name}"

    def add_host(self, name: str) -> None:
        namespace = self.host(name)
        ip("netns", "add", namespace)
        self.namespaces.append(namespace)
        ip("link", "set", "lo", "up", namespace=namespace)

    def add_link(self, key: str, a: str | None, b: str) -> Link:
        base = 4 * len(self.links)
        link = Link(
            f"qc{self.tag}{key}",
            self.host(a) if a else None,
            self.host(b),
            f"10.203.{self.subnet}.{base + 1}",
            f"10.203.{self.subnet}.{base + 2}",
        )
        ip("link", "add", link.name, "type", "veth", "peer", "name", f"{link.name}p")
        ip("link", "set", f"{link.name}p", "netns", link.b)
        if link.a:
            ip("link", "set", link.name, "netns", link.a)
        ip("addr", "add", f"{link.a_address}/30", "dev", link.name, namespace=link.a)
        ip("addr", "add", f"{link.b_address}/30", "dev", f"{link.name}p", namespace=link.b)
        ip("link", "set", link.name, "up", namespace=link.a)
        ip("link", "set", f"{link.name}p", "up", namespace=link.b)
        self.links[key] = link
        return link

    def start_redis(self) -> None:
        namespace = self.host("r")
        self.redis = subprocess.Popen(
            [
                *("ip", "netns", "exec", namespace, "redis-server", "--port", "6379"),
                *("--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["ip", "netns", "exec", namespace, "redis-cli", "-p", "6379", "ping"],
                capture_output=True,
                text=True,
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start on its test host")

    def start_postgres(self) -> None:
        self.postgres = NetnsPostgres(self.host("p"))

    def start_instance(self, name: str, env: dict[str, str]) -> NetnsServer:
        workdir = self.workdir / name
        workdir.mkdir()
        server_env = {
            **os.environ,
            "PORT": str(PORT),
            "HOST": "0.0.0.0",
            "PYTHONUNBUFFERED": "1",
            "RATE_LIMIT_PER_SECOND": "100000",
            "RATE_LIMIT_BURST": "100000",
            "CREATIONS_PER_MINUTE": "6000000",
            "CREATIONS_BURST": "100000",
            "REST_READS_PER_MINUTE": "6000000",
            "REST_READS_BURST": "100000",
            **env,
        }
        log_path = workdir / "server.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    *("ip", "netns", "exec", self.host(name)),
                    *(sys.executable, "-m", "quartchat.process.cli", "serve"),
                ],
                cwd=workdir,
                env=server_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        # `ip netns exec` execs the command: the pid is the server's own.
        server = NetnsServer(
            process, PORT, log_path, server_env, host=self.links[f"c{name}"].b_address
        )
        self.servers[name] = server
        wait_until_healthy(server)
        return server

    def remove(self) -> None:
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.stop()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()
        if self.postgres is not None:
            self.postgres.remove()
        for link in self.links.values():
            # Deleting one end deletes both; the root end of a client link lives here.
            if link.a is None:
                subprocess.run(["ip", "link", "del", link.name], check=False, capture_output=True)
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


class NetnsPostgres(PrivatePostgres):
    """The private cluster, started on a test host and accepting its neighbours."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        super().__init__()

    @property
    def url(self) -> str:
        raise AssertionError("reach it at a link's address: Cluster.postgres_url")

    def _as_postgres(self, command: list[str]) -> None:
        prefix = ["ip", "netns", "exec", self.namespace]
        if os.geteuid() == 0:
            prefix += ["runuser", "-u", "postgres", "--"]
        subprocess.run(prefix + command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        hba = self.data / "pg_hba.conf"
        line = "host all all 10.203.0.0/16 trust\n"
        if line not in hba.read_text():
            with hba.open("a") as file:
                file.write(line)
        options = f"-p 5432 -k {self.socket_dir} -c listen_addresses=*"
        log = str(self.workdir / "server.log")
        self._as_postgres(
            [self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start"]
        )


@contextlib.contextmanager
def cluster(instance_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Hosts a, b (instances), r (Redis) and p (PostgreSQL); links ca/cb from the root
    namespace (clients) to each instance, ar/br to Redis, ap/bp to PostgreSQL. Removed
    on the way out, whatever happened."""
    tag = uuid.uuid4().hex[:5]
    made = Cluster(tag, int(tag, 16) % 250 + 1, Path(tempfile.mkdtemp(prefix="quartchat-netns-")))
    try:
        for name in ("a", "b", "r", "p"):
            made.add_host(name)
        for name in ("a", "b"):
            made.add_link(f"c{name}", None, name)
        for name in ("a", "b"):
            made.add_link(f"{name}r", name, "r")
            made.add_link(f"{name}p", name, "p")
        made.start_redis()
        made.start_postgres()
        for name in ("a", "b"):
            env = {
                "DATABASE_URL": f"postgres://postgres@{made.links[f'{name}p'].b_address}:5432/postgres",
                "REDIS_URL": f"redis://{made.links[f'{name}r'].b_address}:6379/0",
                **(instance_env or {}),
            }
            made.start_instance(name, env)
        yield made
    finally:
        made.remove()
