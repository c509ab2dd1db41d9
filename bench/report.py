"""Turn one `bench/run` results folder into the issue's table of ratios quartchat/peer."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

PEER_FLOOR = "quart-hypercorn"
QUARTCHATS = ("quartchat-sqlite", "quartchat-pg-redis")
FANOUT_RATE = 1000
P99_LIMIT_MS = 100


def load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data.get("results", data)


def fanout_us(results: dict[str, Any], name: str, rate: float = FANOUT_RATE) -> float | None:
    rows = [
        row["server_cpu_us_per_delivered"]
        for row in results.get(name, {}).get("A", [])
        if isinstance(row, dict)
        and row.get("offered_target_per_s") == rate
        and row.get("server_cpu_us_per_delivered")
    ]
    return statistics.mean(rows) if rows else None


def highest_clean_rate(results: dict[str, Any], name: str) -> float | None:
    """The highest rate at which it, and every lower rate, passed in every pass."""
    by_rate: dict[float, bool] = {}
    for row in results.get(name, {}).get("A", []):
        if not isinstance(row, dict) or "offered_target_per_s" not in row:
            continue
        clean = (
            row.get("loss", 1) == 0
            and row.get("errors", 1) == 0
            and (row.get("lat_p99_ms") or 1e9) < P99_LIMIT_MS
        )
        rate = row["offered_target_per_s"]
        by_rate[rate] = by_rate.get(rate, True) and clean
    best = None
    for rate in sorted(by_rate):
        if not by_rate[rate]:
            break
        best = rate
    return best


def rooms_us(results: dict[str, Any], name: str) -> float | None:
    row = results.get(name, {}).get("B")
    return row.get("server_cpu_us_per_delivered") if isinstance(row, dict) else None


def idle_kib(results: dict[str, Any], name: str) -> float | None:
    row = results.get(name, {}).get("C")
    return row.get("kib_per_conn") if isinstance(row, dict) else None


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs in (None, 0):
        return "n/a"
    return f"{ours / theirs:.2f}x"


def fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def slow_consumer(results: dict[str, Any], unstalled: dict[str, Any], name: str) -> str:
    row = results.get(name, {}).get("D")
    if not isinstance(row, dict) or "lat_p99_ms" not in row:
        return "n/a"
    stalled = row.get("stalled") or [{}]
    fate = stalled[0]
    closed = fate.get("closed_after_s")
    how = fate.get("close_code") or ("reset" if fate.get("reset") else fate.get("how"))
    alone = unstalled.get(name, {}).get("D")
    versus = ""
    if isinstance(alone, dict) and alone.get("lat_p99_ms"):
        versus = (
            f" = {row['lat_p99_ms'] / alone['lat_p99_ms']:.2f}x the run without it "
            f"({alone['lat_p99_ms']:.1f} ms)"
        )
    return (
        f"p99 {row['lat_p99_ms']:.1f} ms{versus}, loss {row.get('loss', '?')}, "
        f"RSS +{row.get('server_rss_growth_mib', 0):.1f} MiB, stalled client "
        + (f"closed at {closed:.1f} s ({how})" if closed is not None else "still open")
    )


def storm(results: dict[str, Any], name: str) -> str:
    row = results.get(name, {}).get("E")
    if not isinstance(row, dict) or "round" not in row:
        return "n/a"
    rounds = ", ".join(
        f"r{r['round']}: {r['connected']}/{row['storm_connections']} "
        f"p99 {r['connect_p99_ms']:.0f} ms"
        for r in row["round"]
    )
    return (
        f"{rounds}; errors {row.get('connect_errors')}; "
        f"RSS r2-r1 {row.get('rss_last_minus_first_mib', 0):+.1f} MiB"
    )


def main(folder: Path) -> None:
    abce = load(folder / "ABCE" / "all.json")
    slow = load(folder / "D" / "all.json")
    unstalled = load(folder / "D-unstalled" / "all.json")
    persistence = (
        json.loads((folder / "persistence.json").read_text())
        if (folder / "persistence.json").exists()
        else {}
    )
    print(f"# quartchat benchmark {folder.name}\n")
    print("Ratios are quartchat / peer from this one run (lower is better for CPU and memory).\n")
    print("| figure | " + " | ".join(QUARTCHATS) + " |")
    print("|---|" + "---|" * len(QUARTCHATS))

    def row(label: str, cells: list[str]) -> None:
        print(f"| {label} | " + " | ".join(cells) + " |")

    floor_a, fastapi_a = fanout_us(abce, PEER_FLOOR), fanout_us(abce, "fastapi-uvicorn")
    row(
        f"A µs/delivery at {FANOUT_RATE}/s vs {PEER_FLOOR} ({fmt(floor_a)}) "
        f"/ fastapi ({fmt(fastapi_a)})",
        [
            f"{fmt(fanout_us(abce, q))} = {ratio(fanout_us(abce, q), floor_a)} / "
            f"{ratio(fanout_us(abce, q), fastapi_a)}"
            for q in QUARTCHATS
        ],
    )
    row(
        "A highest clean rate (quart-hypercorn "
        f"{highest_clean_rate(abce, PEER_FLOOR)}, node {highest_clean_rate(abce, 'node-ws')})",
        [str(highest_clean_rate(abce, q)) for q in QUARTCHATS],
    )
    floor_b, node_b = rooms_us(abce, PEER_FLOOR), rooms_us(abce, "node-ws")
    row(
        f"B µs/delivery vs {PEER_FLOOR} ({fmt(floor_b)}) / node ({fmt(node_b)})",
        [
            f"{fmt(rooms_us(abce, q))} = {ratio(rooms_us(abce, q), floor_b)} / "
            f"{ratio(rooms_us(abce, q), node_b)}"
            for q in QUARTCHATS
        ],
    )
    row(
        f"C KiB per idle socket (quart-hypercorn {fmt(idle_kib(abce, PEER_FLOOR))}, "
        f"node {fmt(idle_kib(abce, 'node-ws'))})",
        [fmt(idle_kib(abce, q)) for q in QUARTCHATS],
    )
    row(
        "D one stalled client of 100, 2 KB at 500/s",
        [slow_consumer(slow, unstalled, q) for q in QUARTCHATS],
    )
    row(
        "E 1000 reconnecting at once (peers: "
        + "; ".join(f"{p} {storm(abce, p)}" for p in ("node-ws", "fastapi-uvicorn", PEER_FLOOR))
        + ")",
        [storm(abce, q) for q in QUARTCHATS],
    )
    row(
        "persistence: stored/s, 50 concurrent senders, one room",
        [
            fmt(persistence.get("sqlite"), " /s"),
            fmt(persistence.get("postgresql"), " /s"),
        ],
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
