"""A client's frame budget: the token bucket behind every per-socket, per-user and
per-address rate limit."""

from __future__ import annotations


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

    def take(self, now: float, cost: float = 1.0) -> float:
        """Spend `cost` tokens: 0.0 if the frame may pass, else seconds until they are back."""
        self._refill(now)
        if self._tokens >= self._burst:
            self.strikes = 0
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        self.strikes += 1
        return (cost - self._tokens) / self._rate

    def reserve(self, now: float, cost: float) -> float:
        """Set `cost` tokens aside, into debt if need be, unless a debt is still owed:
        0.0 if they were set aside, else seconds until the debt is paid. `refund` gives
        back what the reservation did not use."""
        self._refill(now)
        if self._tokens < 0:
            return -self._tokens / self._rate
        self._tokens -= cost
        return 0.0

    def refund(self, amount: float) -> None:
        self._tokens = min(self._burst, self._tokens + amount)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    @property
    def last_used(self) -> float:
        return self._stamp

    @property
    def exhausted(self) -> bool:
        return self.strikes >= self.max_strikes
