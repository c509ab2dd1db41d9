"""Abuse limits of one socket: a token bucket for the frames it sends."""

from __future__ import annotations

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_MANY_SOCKETS = 4429


class FrameBudget:
    """A token bucket: `rate` frames per second on average, bursts of up to `burst`.

    `strikes` counts frames refused since the bucket was last full again; a client that
    keeps sending without ever slowing down reaches `max_strikes` and is closed (1008).
    """

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens", "max_strikes", "strikes")

    def __init__(self, rate: float, burst: int, max_strikes: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now
        self.max_strikes = max_strikes
        self.strikes = 0

    def take(self, now: float) -> float:
        """Spend a token: 0.0 if the frame may pass, else seconds until one is back."""
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= self._burst:
            self.strikes = 0
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        self.strikes += 1
        return (1.0 - self._tokens) / self._rate

    @property
    def exhausted(self) -> bool:
        return self.strikes >= self.max_strikes
