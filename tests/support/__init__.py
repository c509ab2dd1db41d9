"""Helpers for tests that drive a real server, one module per job:

- `servers`: start and stop `quartchat serve` on a free port, read its health and metrics;
- `serving`: `served(tmp_path, env)`, a server of the test's own with an HTTP client;
- `clients`: make users and rooms over HTTP, open `websockets` sockets, read frames;
- `raw_socket`: a bare RFC 6455 client, for a peer that stops reading or control frames;
- `databases`: a fresh PostgreSQL database, or private PostgreSQL / Redis processes;
- `browser` (imported on its own, it needs Playwright): Debian's Chromium;
- `watch` (imported on its own): a neighbour socket in a process of its own, timing its
  echoes next to an attack.
- `redis_cluster` (imported on its own): a three-primary Redis Cluster of `redis-server`
  processes on free ports, which a test may kill, restart or reshard;
- `netns` (imported on its own, it needs root): test hosts in network namespaces, two
  instances, Redis and PostgreSQL, with links a test cuts or slows;
- `protocol_check` (imported on its own): every frame a test receives checked against
  `/asyncapi.json`;
- `edge` (imported on its own, it needs nginx): a TLS-terminating nginx in front of a server;
- `image` (imported on its own): a Docker build read and performed without a daemon;
- `scripts/`: programs a test runs in a process of its own (`run_script`).

Everything but `browser`, `watch`, `netns`, `protocol_check`, `edge`, `image` and `scripts`
is re-exported here, so `from tests.support import ...` works.
"""

# Star imports on purpose: each module's __all__ says what it offers, once.
from tests.support import clients, databases, raw_socket, servers, serving
from tests.support.clients import *  # noqa: F403
from tests.support.databases import *  # noqa: F403
from tests.support.raw_socket import *  # noqa: F403
from tests.support.servers import *  # noqa: F403
from tests.support.serving import *  # noqa: F403

__all__ = [
    *servers.__all__,
    *serving.__all__,
    *clients.__all__,
    *raw_socket.__all__,
    *databases.__all__,
]
