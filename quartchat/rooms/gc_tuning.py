"""When Python's cycle collector runs in a server process full of sockets.

A closed connection does not free itself: Hypercorn's, Quart's and asyncio's objects
for it (about 130, with the tracebacks of its cancelled tasks) form reference cycles
that only the cycle collector reclaims. With CPython's defaults that collector also
runs every 700 allocations, and every few of those runs it walks every object in the
process: a 1000-socket reconnect storm spent a fifth of its CPU there, rescanning the
same modules, ORM metadata and open sockets.

So: what exists once serving starts is frozen out of collections, young collections
run less often, and a full collection runs shortly after sockets have closed, when
there is garbage to find, so memory stays flat across storms.
"""

from __future__ import annotations

import asyncio
import gc

from quartchat.rooms.hub import Hub

# Allocations between young collections (CPython's default is 700).
YOUNG_THRESHOLD = 20_000
CHECK_INTERVAL_SECONDS = 0.25
# Sockets closed since the last full collection that make the next check collect.
CLOSES_PER_COLLECTION = 100


def settle() -> None:
    """Freeze everything alive now out of collections and space out young ones."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


async def collect_after_closes(hub: Hub) -> None:
    """Run a full collection once enough sockets have closed, and once more when the
    closing has settled (no close during the last check): connections that were still
    finishing their close during the first collection were not garbage yet."""
    collected = seen = hub.departures
    again = False
    while True:
        await asyncio.sleep(CHECK_INTERVAL_SECONDS)
        closed, settled = hub.departures - collected, hub.departures == seen
        seen = hub.departures
        if closed >= CLOSES_PER_COLLECTION or (again and settled):
            again = not settled  # collected mid-burst: once more when it has settled
            collected = hub.departures
            gc.collect()
