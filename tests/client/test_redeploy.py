"""quartchat.js in Chromium through a redeploy: the sockets an instance closes with 1012
come back spread over `reconnectJitterMs`, not all in the same millisecond."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from tests.client.conftest import OpenPage
from tests.support import create_room, create_user, start_server

WAIT = 60_000  # ms: generous, for a loaded 2-core machine
JITTER_MS = 3000  # small, to keep the test short (the default is 5000)
PER_GROUP = 8

# Opens one Room per user id in this page, all with the same reconnectJitterMs, and
# notes, per Room, when its socket was closed with 1012 and when it next tried to open
# one (the `open` frame comes right before the handshake), by the page's own clock.
OPEN_ROOMS = """
async ([url, roomId, userIds, jitter, group]) => {
  window.groups = window.groups || {};
  const rooms = window.groups[group] = [];
  for (const userId of userIds) {
    const room = new quartchat.Room({ url, roomId, userId, reconnectJitterMs: jitter });
    room.restart = { closedAt: null, retriedAt: null, statuses: [] };
    room.addEventListener("status", (e) => room.restart.statuses.push(e.detail));
    room.addEventListener("frame", (e) => {
      const restart = room.restart;
      const { direction, code } = e.detail;
      if (direction === "close" && code === 1012 && restart.closedAt === null) {
        restart.closedAt = performance.now();
      } else if (direction === "open" && restart.closedAt !== null && !restart.retriedAt) {
        restart.retriedAt = performance.now();
      }
    });
    rooms.push(room);
    await room.open();
  }
  return rooms.map((room) => room.status);
}
"""


async def open_rooms(page: Page, url: str, room_id: str, users: list[Any], jitter: int) -> None:
    group = f"jitter{jitter}"
    user_ids = [user["id"] for user in users]
    statuses = await page.evaluate(OPEN_ROOMS, [url, room_id, user_ids, jitter, group])
    assert statuses == ["open"] * len(users)


async def first_retry_delays(page: Page, jitter: int) -> list[float]:
    """Milliseconds from each Room's 1012 to its first try to reconnect."""
    delays: list[float] = await page.evaluate(
        "(group) => groups[group].map((room) => room.restart.retriedAt - room.restart.closedAt)",
        f"jitter{jitter}",
    )
    return delays


async def test_a_redeploy_spreads_the_reconnects_over_the_jitter(
    open_page: OpenPage, tmp_path: Path
) -> None:
    server = start_server(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            room = await create_room(http)
            users = [await create_user(http, f"user{i}") for i in range(2 * PER_GROUP)]
            page = await open_page(server.http_url)
            # The old behaviour (reconnect at once) side by side with the jittered one.
            await open_rooms(page, server.http_url, room["id"], users[:PER_GROUP], 0)
            await open_rooms(page, server.http_url, room["id"], users[PER_GROUP:], JITTER_MS)
            assert server.stop() == 0
            server = start_server(tmp_path, port=server.port)
            try:
                await page.wait_for_function(
                    "Object.values(groups).flat().every((room) => room.status === 'open'"
                    " && room.restart.retriedAt !== null)",
                    timeout=WAIT,
                )
            except PlaywrightError:
                seen = await page.evaluate(
                    "JSON.stringify(Object.values(groups).flat().map((r) => [r.status, r.restart]))"
                )
                raise AssertionError(f"not every room came back: {seen}") from None
            at_once = await first_retry_delays(page, 0)
            spread = await first_retry_delays(page, JITTER_MS)
            statuses = await page.evaluate("groups.jitter3000.map((room) => room.restart.statuses)")
    finally:
        server.stop()
    print(f"first retry after 1012, ms: at once {at_once}, jittered {spread}")
    assert all(delay >= 0 for delay in at_once + spread), (at_once, spread)
    # Uniform over [0, 3000 ms]: eight draws span less than a third of it with a
    # probability of about 8 * (1/3)^7 < 0.004.
    assert max(spread) - min(spread) >= JITTER_MS / 3, spread
    # Timers may fire late on a loaded machine, never early.
    assert max(spread) <= JITTER_MS + 5000, spread
    assert max(at_once) - min(at_once) < (max(spread) - min(spread)) / 3, (at_once, spread)
    assert all(s == ["connecting", "open", "reconnecting", "open"] for s in statuses), statuses
