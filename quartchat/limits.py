"""Abuse limits: token buckets for a socket's frames and for an address's REST writes."""

from __future__ import annotations

from time import monotonic

from quart import Quart, request

from .config import Settings
from .errors import APIError

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
    def last_used(self) -> float:
        return self._stamp

    @property
    def exhausted(self) -> bool:
        return self.strikes >= self.max_strikes


class AddressBudgets:
    """One FrameBudget per client address, for REST writes. Addresses whose bucket is
    full again are forgotten now and then, so the table stays as small as the traffic."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self._rate = per_minute / 60
        self._burst = burst
        self._budgets: dict[str, FrameBudget] = {}
        self._since_prune = 0

    def take(self, address: str, now: float) -> float:
        """0.0 if this address may write now, else seconds until it may."""
        budget = self._budgets.get(address)
        if budget is None:
            budget = self._budgets[address] = FrameBudget(self._rate, self._burst, 1, now)
        self._since_prune += 1
        if self._since_prune >= 1000:
            self._prune(now)
        return budget.take(now)

    def _prune(self, now: float) -> None:
        self._since_prune = 0
        idle = self._burst / self._rate  # long enough for any bucket to be full again
        self._budgets = {
            address: budget
            for address, budget in self._budgets.items()
            if now - budget.last_used < idle
        }


def init_app(app: Quart, settings: Settings) -> None:
    """Limit REST writes per client address (REST_WRITES_PER_MINUTE, _BURST): 429."""
    budgets = AddressBudgets(settings.rest_writes_per_minute, settings.rest_writes_burst)

    @app.before_request
    async def limit_writes_per_address() -> None:
        if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
            wait = budgets.take(request.remote_addr or "", monotonic())
            if wait:
                detail = f"too many writes from this address; retry in {wait:.1f} s"
                raise APIError(429, "RATE_LIMITED", detail, retry_after=wait)
