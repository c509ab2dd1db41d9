"""Abuse limits: token buckets for a socket's frames, a user's messages (socket and REST
alike) and typing events, the sockets a user and an address open, and an address's
creations of users and rooms, its expensive REST reads (lists and history pages: far
more frequent than creations, so with settings of their own) and the messages its
sockets' replays read."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sized
from functools import wraps
from ipaddress import IPv6Address, IPv6Network, ip_address
from time import monotonic
from typing import ParamSpec, TypeVar

from quart import Quart, current_app, request

from quartchat.config.settings import Settings
from quartchat.wire.budget import FrameBudget
from quartchat.wire.errors import ChatError

EXTENSION_KEY = "quartchat.rooms.limits"
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=Sized)


class Budgets:
    """One FrameBudget per key (a user id, a client address), least recently used first.

    A key whose bucket is full again is forgotten when a new key comes, and so is the
    least recently used beyond `max_keys`: a client that churns through addresses (an
    IPv6 block of /64s, forwarded addresses) cannot grow the table without bound, and at
    worst hands the keys idle the longest a full bucket early."""

    def __init__(
        self, rate: float, burst: int, max_strikes: int = 1, max_keys: int = 100_000
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._max_strikes = max_strikes
        self._max_keys = max_keys
        self._idle = burst / rate  # long enough for any bucket to be full again
        self._budgets: OrderedDict[str, FrameBudget] = OrderedDict()

    def of(self, key: str, now: float) -> FrameBudget:
        """The budget of `key`, a full one if it had none."""
        budget = self._budgets.get(key)
        if budget is not None:
            self._budgets.move_to_end(key)
            return budget
        self._forget(now)
        budget = FrameBudget(self._rate, self._burst, self._max_strikes, now)
        self._budgets[key] = budget
        return budget

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """0.0 if `key` may go ahead now (spending `cost`), else seconds until it may."""
        return self.of(key, now).take(now, cost)

    def _forget(self, now: float) -> None:
        while self._budgets:
            oldest = next(iter(self._budgets.values()))
            if len(self._budgets) < self._max_keys and now - oldest.last_used < self._idle:
                return
            self._budgets.popitem(last=False)


# Replay pages read at once by this process (see PacedReads): a commit waits behind at
# most this many, and one page of 500 takes a few milliseconds.
REPLAY_READS = 2


class PacedReads:
    """Pages read for one purpose (socket replays), paced per key (a client address).

    A key's budget counts the items its pages returned; past it, its pages wait (slowed,
    never refused). And only `at_once` pages are read at a time, whoever asks: on
    SQLite every read queues on the one connection that also commits everyone's
    messages, and twenty replays' pages queued there held a neighbour's commit for 2 s.
    """

    def __init__(self, budgets: Budgets, at_once: int) -> None:
        self.budgets = budgets
        self._reading = asyncio.Semaphore(at_once)

    async def read(self, key: str, most: int, read: Callable[[], Awaitable[S]]) -> S:
        """`read()` a page of at most `most` items once `key` owes its budget nothing.

        The whole page is set aside before the read, so that the concurrent readers of
        one key wait for each other, and what it did not use is given back after it."""
        budget = self.budgets.of(key, monotonic())
        wait = budget.reserve(monotonic(), most)
        while wait:
            await asyncio.sleep(wait)
            wait = budget.reserve(monotonic(), most)
        used = most
        try:
            async with self._reading:
                page = await read()
            used = len(page)
        finally:
            budget.refund(most - used)
        return page


class Limits:
    """This instance's shared budgets: messages per user; creations, reads and replayed
    messages per client address."""

    def __init__(self, settings: Settings) -> None:
        # REST posts and socket frames alike, so mixing transports gains nothing, and
        # users behind one address (a NAT, a proxy) each have their own.
        self.messages = Budgets(
            settings.rate_limit_per_second, settings.rate_limit_burst, settings.rate_limit_strikes
        )
        self.message_rate = settings.rate_limit_per_second
        self.creations = Budgets(settings.creations_per_minute / 60, settings.creations_burst)
        self.reads = Budgets(settings.rest_reads_per_minute / 60, settings.rest_reads_burst)
        self.replays = PacedReads(
            Budgets(settings.replay_messages_per_second, settings.replay_burst), REPLAY_READS
        )
        # Per user and room: typing says "someone is typing here", so one a second of a
        # user's sockets says all of it; the client library sends one per 2 s.
        self.typing = Budgets(settings.typing_per_second, settings.typing_burst)
        # Opening a socket costs a handshake, lookups, presence and an event to the
        # whole room (twice, with its close), so it has a budget of its own.
        self.user_opens = _optional_budgets(
            settings.socket_opens_per_user_per_minute, settings.socket_opens_per_user_burst
        )
        self.address_opens = _optional_budgets(
            settings.socket_opens_per_ip_per_minute, settings.socket_opens_per_ip_burst
        )

    def message_refusal(self, user_id: str) -> tuple[float, str]:
        """(0.0, "") if `user_id` may send a message now, else (seconds to wait, why)."""
        wait = self.messages.take(user_id, monotonic())
        if not wait:
            return 0.0, ""
        return wait, (
            f"over {self.message_rate:g} messages per second from this user "
            "(sockets and REST together); not stored"
        )

    def typing_allowed(self, user_id: str, room_id: str) -> bool:
        """Whether a typing event of `user_id` in `room_id` goes to the room now."""
        return not self.typing.take(f"{user_id}\t{room_id}", monotonic())

    def address_open_refusal(self, address: str) -> str:
        """Why one more socket from `address` is refused now (it is charged), or ""."""
        wait = self.address_opens.take(address, monotonic()) if self.address_opens else 0.0
        return f"too many sockets opened from this address; retry in {wait:.1f} s" if wait else ""

    def user_open_refusal(self, user_id: str) -> str:
        """Why one more socket of `user_id` is refused now (it is charged), or ""."""
        wait = self.user_opens.take(user_id, monotonic()) if self.user_opens else 0.0
        return f"too many sockets opened by this user; retry in {wait:.1f} s" if wait else ""

    def message_flooding(self, user_id: str) -> bool:
        """Whether the user kept sending far over its budget (sockets close with 1008)."""
        return self.messages.of(user_id, monotonic()).exhausted


def _optional_budgets(per_minute: float, burst: int) -> Budgets | None:
    """Budgets of `per_minute` with bursts of `burst`; None (no limit) for a rate of 0."""
    return Budgets(per_minute / 60, burst) if per_minute else None


def current_limits() -> Limits:
    limits: Limits = current_app.extensions[EXTENSION_KEY]
    return limits


def require_message_budget(user_id: str) -> None:
    """Spend one of the user's messages, or refuse the REST post with 429."""
    wait, detail = current_limits().message_refusal(user_id)
    if wait:
        raise ChatError("RATE_LIMITED", f"{detail}; retry in {wait:.1f} s", retry_after=wait)


def address_key(address: str) -> str:
    """What a per-address budget counts: an IPv4 address, or an IPv6 address's /64.

    One IPv6 subscriber is handed a whole /64 (2^64 addresses it may pick from at will),
    so counting single IPv6 addresses would give a script as many budgets as it likes."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if not isinstance(parsed, IPv6Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:  # an IPv4 client on a dual-stack listener
        return str(parsed.ipv4_mapped)
    return str(IPv6Network((parsed, 64), strict=False))


def _limit_per_address(
    pick: Callable[[Limits], Budgets], what: str, cost: Callable[[], float] = lambda: 1.0
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Route decorator: the request draws `cost()` from its client address's budget in
    `pick`, else 429 with Retry-After."""

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(handler)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            budgets = pick(current_limits())
            wait = budgets.take(address_key(request.remote_addr or ""), monotonic(), cost())
            if wait:
                # Read the body anyway: one left unread makes Hypercorn drop the
                # connection, and a client's next request already sent on it would fail
                # with no answer.
                await request.get_data()
                detail = f"too many {what} from this address; retry in {wait:.1f} s"
                raise ChatError("RATE_LIMITED", detail, retry_after=wait)
            return await handler(*args, **kwargs)

        return limited

    return decorate


# Anonymous creation of users and rooms (CREATIONS_PER_MINUTE, CREATIONS_BURST).
limit_creations = _limit_per_address(lambda limits: limits.creations, "creations")
# Lists, searches and history pages (REST_READS_PER_MINUTE, REST_READS_BURST): each
# walks an index for what it returns (a search too, since migration 0004).
limit_reads = _limit_per_address(lambda limits: limits.reads, "reads")


def init_app(app: Quart, settings: Settings) -> None:
    app.extensions[EXTENSION_KEY] = Limits(settings)
