"""Each test's tier: `unit`, `server`, `service` or `browser`, exactly one (pyproject.toml
declares the markers; `scripts/test --tier NAME` runs one tier).

- `unit`: in this process (subprocesses such as ruff or a migration script allowed), no
  server, no PostgreSQL or Redis;
- `server`: starts `quartchat serve` (or `scripts/serve`), SQLite and the in-memory broker;
- `service`: needs PostgreSQL, Redis, nginx, network namespaces or another Python;
- `browser`: drives Chromium, or Node.js and its npm tools (TypeScript, a Next.js build).

`slow` (ten seconds or more a test) is orthogonal: a module or test says so, and the
`nextjs` and `netns` markers imply it.

The tiers are ordered: a test's tier is the highest it needs. `tier_of` reads it from
the fixtures a test uses (`FIXTURE_TIERS`), from a parameter id that names a service
(`postgres`, `redis`), and from the `nextjs` and `netns` markers; a module or a test
that starts a server or a service itself, which no fixture tells, says so with the
tier's own marker (`pytestmark = pytest.mark.server`). A hand-set tier lower than the
fixtures need, or two of them, is refused at collection.

`process_tier` names the tier a process start needs, for tests/conftest.py's guard: a
test whose tier is lower fails when it starts one, so a missing mark shows up as a
failure of the tier it was wrongly put in, not as a slow or flaky run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import pytest

__all__ = ["SLOW_MARKERS", "TIERS", "process_tier", "tier_of"]

TIERS = ("unit", "server", "service", "browser")

FIXTURE_TIERS = {
    # tests/conftest.py's session server and the servers modules start of their own
    "server": "server",
    "http": "server",
    "http_of": "server",
    "start": "server",
    "seeded": "server",
    "secured": "server",
    "installed": "service",  # an installed wheel on another Python (test_install, test_pythons)
    "postgres_url": "service",
    "postgres": "service",
    "pg_server": "service",
    "database_env": "server",  # parametrized: its postgres half is a service test
    "hosts": "service",  # network namespaces
    "pair": "service",  # two instances on PostgreSQL and Redis
    "trio": "service",  # three instances on Redis
    "redis_cluster": "service",  # three Redis Cluster primaries of the tests' own
    "browser": "browser",
    "page": "browser",
    "open_page": "browser",
    "open_app": "browser",
    "next_app": "browser",
}
MARKER_TIERS = {"nextjs": "browser", "netns": "service"}
# Markers whose tests are slow by nature (a Next.js build, test hosts in namespaces).
SLOW_MARKERS = ("nextjs", "netns")
SERVICE_PARAMETERS = ("postgres", "redis")


def _rank(tier: str) -> int:
    return TIERS.index(tier)


def _highest(tiers: Sequence[str]) -> str:
    return max(tiers, key=_rank, default="unit")


def fixture_tier(item: pytest.Item) -> str:
    """The tier the test's fixtures, parameters and markers need, marks by hand aside."""
    fixtures = getattr(item, "fixturenames", ())
    needs = [FIXTURE_TIERS[name] for name in fixtures if name in FIXTURE_TIERS]
    needs += [MARKER_TIERS[mark.name] for mark in item.iter_markers() if mark.name in MARKER_TIERS]
    callspec = getattr(item, "callspec", None)
    if callspec is not None and set(callspec.id.split("-")) & set(SERVICE_PARAMETERS):
        needs.append("service")
    return _highest(needs)


def tier_of(item: pytest.Item) -> str:
    """The one tier of `item`; raises `pytest.UsageError` for contradictory marks."""
    marked = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS}, key=_rank)
    needed = fixture_tier(item)
    if len(marked) > 1:
        raise pytest.UsageError(f"{item.nodeid}: marked with more than one tier: {marked}")
    if marked and _rank(marked[0]) < _rank(needed):
        raise pytest.UsageError(
            f"{item.nodeid}: marked {marked[0]} but its fixtures or parameters need {needed};"
            f" mark it {needed}"
        )
    return marked[0] if marked else needed


# What a started program's name says about the tier it needs (tests/conftest.py's guard).
SERVICE_PROGRAMS = ("nginx", "redis-server", "postgres", "initdb", "pg_ctl", "ip", "docker")
BROWSER_PROGRAMS = ("chromium", "node", "npm", "npx", "next", "tsc", "esbuild")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SHARED_SERVICE_PORTS = {"postgres": 5432, "postgresql": 5432, "asyncpg": 5432, "redis": 6379}
SERVER_ARGUMENTS = ("serve", "hypercorn")


def process_tier(command: Sequence[str], env: Mapping[str, str] | None) -> str:
    """The tier a test that starts `command` with `env` (None: this process's) needs."""
    program = os.path.basename(command[0]) if command else ""
    names = {os.path.basename(argument) for argument in command}
    if program in BROWSER_PROGRAMS or program.startswith("chrom"):
        return "browser"
    if program in SERVICE_PROGRAMS or program.startswith(("python3.12", "python3.13")):
        return "service"
    if names & set(SERVER_ARGUMENTS):
        environment = os.environ if env is None else env
        urls = [environment.get("DATABASE_URL", ""), environment.get("REDIS_URL", "")]
        return "service" if any(map(uses_shared_service, urls)) else "server"
    return "unit"


def uses_shared_service(url: str) -> bool:
    """Whether `url` names the machine's PostgreSQL or Redis (a test's own stand-in, a
    private process or a port nothing listens on, is not a service it needs)."""
    parts = urlsplit(url)
    default_port = SHARED_SERVICE_PORTS.get(parts.scheme)
    if default_port is None or parts.hostname not in LOCAL_HOSTS:
        return False
    try:
        return (parts.port or default_port) == default_port
    except ValueError:  # a port that is not a number: refused before any connection
        return False
