"""A real Redis Cluster of three primaries on free ports, started by the tests.

Each node is Debian's `redis-server` in cluster mode in a directory of its own (its
`nodes.conf` survives a kill, so a restarted primary rejoins with its slots), joined by
`redis-cli --cluster create`. Without `redis-server` the tests that need a cluster skip,
and fail under `CI=true` (CI must run them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.support.servers import free_port

# A primary that stops answering is marked failed after this long; short, so that a
# killed primary's cluster goes down (and, restarted, comes back) within a test.
NODE_TIMEOUT_MS = 1000
STARTUP_SECONDS = 20.0


def require_redis_cluster_tools() -> None:
    """Skip (fail under CI=true) when `redis-server` or `redis-cli` is missing."""
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed: the Redis Cluster tests need Debian's"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the Redis Cluster tests: {reason}")
    pytest.skip(reason)


class ClusterNode:
    """One primary: a `redis-server --cluster-enabled yes` on a port and bus port of its own."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.bus_port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-port", str(self.bus_port)),
                *("--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the primary vanishes mid-conversation, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cli(self, *command: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *command],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return result.stdout.strip()


class LocalRedisCluster:
    """Three primaries, no replicas: a killed primary's slots are down until it is back."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.nodes = [ClusterNode(workdir / f"node-{index}") for index in range(size)]
        for node in self.nodes:
            node.workdir.mkdir()
            node.start()
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            self.stop()
            raise AssertionError(f"redis-cli --cluster create failed: {created.stdout}")
        self.wait_until_ok()

    @property
    def url(self) -> str:
        """The REDIS_URL that names this cluster (any one node is enough to find the rest)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def wait_until_ok(self) -> None:
        """Until every node says the cluster is up (every slot served, all agreed)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while not all("cluster_state:ok" in node.cli("CLUSTER", "INFO") for node in self.nodes):
            if time.monotonic() > deadline:
                raise AssertionError("the Redis Cluster did not come up")
            time.sleep(0.1)

    def node_of(self, key: str) -> ClusterNode:
        """The primary that owns `key`'s slot (hash tags honoured)."""
        slot = int(self.nodes[0].cli("CLUSTER", "KEYSLOT", key))
        for node in self.nodes:
            # CLUSTER SHARDS is 7.0+; CLUSTER NODES is easier to read: "myself" and ranges.
            for line in node.cli("CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "myself" not in fields[2]:
                    continue
                for served in fields[8:]:
                    low, _, high = served.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return node
        raise AssertionError(f"no node serves slot {slot}")

    def move_slot_of(self, key: str, target: ClusterNode) -> None:
        """Reshard: move `key`'s slot, and the keys in it, to `target` (the steps of
        `redis-cli --cluster reshard`, for one chosen slot)."""
        source = self.node_of(key)
        assert source is not target, "the slot is already there"
        slot = int(source.cli("CLUSTER", "KEYSLOT", key))
        source_id, target_id = source.cli("CLUSTER", "MYID"), target.cli("CLUSTER", "MYID")
        with (
            redis.Redis(port=source.port) as from_node,
            redis.Redis(port=target.port) as to_node,
        ):
            to_node.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            from_node.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := from_node.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                from_node.execute_command(
                    "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys
                )
            for node in [target, source, *(n for n in self.nodes if n not in (source, target))]:
                with redis.Redis(port=node.port) as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_until_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@contextmanager
def redis_cluster() -> Iterator[LocalRedisCluster]:
    """A fresh three-primary cluster in a temporary directory, stopped on exit."""
    require_redis_cluster_tools()
    with tempfile.TemporaryDirectory(prefix="quartchat-cluster-") as workdir:
        cluster = LocalRedisCluster(Path(workdir))
        try:
            yield cluster
        finally:
            cluster.stop()
