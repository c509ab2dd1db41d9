"""How many access log lines one second may hold, and a count of the ones held back.

A reconnect storm is a thousand handshakes a second, each a `101` line; log platforms
keep about 500 lines a second per replica (Railway) and drop the rest, whichever they
are. So the access log writes at most `ACCESS_LOG_LINES_PER_SECOND` lines of successful
requests a second, one by one as before, and counts the others by status and kind
(`101 socket handshake`, `200 GET`…), which one line per second then reports: every
request is still accounted for, and the line for one that failed (a status of 400 or
more) is always written. Sampling one line in N would have kept some of each kind, but
it writes a line per N requests however large the storm; a budget with counts writes a
bounded number of lines and loses no count.
"""

from __future__ import annotations

from collections import Counter


class LineBudget:
    """`per_second` lines per window of `window` seconds; 0 lets every line through."""

    def __init__(self, per_second: int, window: float = 1.0) -> None:
        self.per_second = per_second
        self.window = window
        self.ends = 0.0  # when the current window ends
        self._written = 0
        self._held: Counter[str] = Counter()

    def expired(self, now: float) -> bool:
        return now >= self.ends

    def take(self, now: float) -> bool:
        """Whether one more line may be written at `now` (the window rolls on first)."""
        if not self.per_second:
            return True
        if now >= self.ends:
            self.ends = now + self.window
            self._written = 0
        if self._written < self.per_second:
            self._written += 1
            return True
        return False

    def hold(self, kind: str) -> None:
        """Count a line that `take` refused."""
        self._held[kind] += 1

    def release(self) -> Counter[str]:
        """The lines held back since the last release, by kind (and forget them)."""
        held, self._held = self._held, Counter()
        return held


def summary(held: Counter[str], window: float) -> str:
    """`1234 more lines not written in the last 1 s: 1200 x 101 socket handshake, …`."""
    kinds = ", ".join(f"{count} x {kind}" for kind, count in held.most_common())
    total = sum(held.values())
    return (
        f"{total} more lines not written in the last {window:g} s "
        f"(ACCESS_LOG_LINES_PER_SECOND): {kinds}"
    )
