"""quartchat's scenarios with the repository's own load generator (no peer servers).

    .venv/bin/python bench/standalone.py OUT_DIR [--quick]

What `bench/run` does in a clone without `../shared/bench`: starts quartchat on SQLite
(and on PostgreSQL + Redis when both answer on this machine), runs scenarios A (one
busy room), B (quiet rooms), C (idle sockets) and E (reconnect storm) with
`bench/loadgen.py` against each, and writes OUT_DIR/report.md (one table, a column per
server) and OUT_DIR/all.json. Figures from one run compare servers with each other;
against the peers only `bench/run` with `../shared/bench` compares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import Figures, parse_args, run  # noqa: E402
from tests.support import (  # noqa: E402
    REDIS_TEST_URL,
    create_postgres_database,
    drop_postgres_database,
    start_server,
)

# The load generator sends far faster, and creates far more users from one address,
# than the abuse limits meant for people allow; the benchmark does not measure them.
UNLIMITED = {
    "RATE_LIMIT_PER_SECOND": "100000",
    "RATE_LIMIT_BURST": "100000",
    "CREATIONS_PER_MINUTE": "6000000",
    "CREATIONS_BURST": "100000",
    "LOG_LEVEL": "WARNING",
}


def scenarios(quick: bool) -> dict[str, list[str]]:
    rates = ["200", "500", "1000"] if quick else ["200", "500", "1000", "1500"]
    seconds = "5" if quick else "8"
    named = {
        f"A {rate}/s": ["fanout", "--clients", "100", "--rate", rate, "--duration", seconds]
        for rate in rates
    }
    named["B"] = [
        "rooms", "--rooms", "50", "--clients", "10", "--senders", "2", "--rate", "500",
        "--duration", "8" if quick else "12",
    ]  # fmt: skip
    named["C"] = ["idle", "--sockets", "1000" if quick else "2000"]
    named["E"] = ["storm", "--sockets", "1000", "--rounds", "2"]
    return named


def postgres_and_redis_answer() -> bool:
    ready = shutil.which("pg_isready")
    pg = (
        ready is not None
        and subprocess.run([ready, "-q", "-h", "127.0.0.1", "-p", "5432"], check=False).returncode
        == 0
    )
    cli = shutil.which("redis-cli")
    redis = (
        cli is not None
        and subprocess.run(
            [cli, "-h", "127.0.0.1", "ping"], capture_output=True, check=False
        ).returncode
        == 0
    )
    return pg and redis


def headline(name: str, figures: Figures) -> str:
    if name.startswith("A") or name == "B":
        return (
            f"{figures.server_cpu_us_per_delivery} µs/delivery, p99 {figures.latency_p99_ms} ms, "
            f"lost {figures.lost}"
        )
    if name == "C":
        return f"{figures.rss_kib_per_socket} KiB/socket ({figures.sockets} open)"
    rounds = " / ".join(f"{row['p99_s']}" for row in figures.rounds)
    return f"p99 connect {rounds} s, errors {figures.connect_errors}"


async def measure(workdir: Path, env: dict[str, str], quick: bool) -> dict[str, Figures]:
    """Every scenario against a server of its own: memory freed by a busy scenario would
    otherwise be reused by the idle sockets that follow it, and hide their cost."""
    results = {}
    for index, (name, arguments) in enumerate(scenarios(quick).items()):
        print(f"-- {name}", file=sys.stderr)
        scenario_dir = workdir / f"scenario-{index}"
        scenario_dir.mkdir(parents=True, exist_ok=True)
        server = start_server(scenario_dir, env=env)
        try:
            pid = str(server.process.pid)
            args = parse_args([server.http_url, *arguments, "--server-pid", pid])
            results[name] = await run(args)
        finally:
            server.stop()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Figures]] = {}
    results["quartchat-sqlite"] = await measure(options.out / "sqlite", UNLIMITED, options.quick)
    if postgres_and_redis_answer():
        database = await create_postgres_database()
        env = {
            **UNLIMITED,
            "DATABASE_URL": database,
            "REDIS_URL": REDIS_TEST_URL,
            "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        }
        try:
            results["quartchat-pg-redis"] = await measure(
                options.out / "pg-redis", env, options.quick
            )
        finally:
            await drop_postgres_database(database)

    names = list(results)
    lines = ["| scenario | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for scenario in scenarios(options.quick):
        cells = [headline(scenario, results[name][scenario]) for name in names]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    report = "\n".join(lines)
    print(report)
    (options.out / "report.md").write_text(report + "\n")
    everything: dict[str, Any] = {
        name: {scenario: asdict(figures) for scenario, figures in by_scenario.items()}
        for name, by_scenario in results.items()
    }
    (options.out / "all.json").write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
