"""A budget for expensive REST reads (lists and history pages), per client address.

Apart from the message and creation budgets in `limits.py`: reads are far more
frequent (a polling client reads every few seconds) and cost the server more per
request, so they have settings of their own, REST_READS_PER_MINUTE and REST_READS_BURST.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import ParamSpec, TypeVar

from quart import Quart, current_app, request

from .config import Settings
from .errors import APIError
from .limits import Budgets, address_key

EXTENSION_KEY = "quartchat.read_budgets"

Params = ParamSpec("Params")
Result = TypeVar("Result")


def init_app(app: Quart, settings: Settings) -> None:
    app.extensions[EXTENSION_KEY] = Budgets(
        settings.rest_reads_per_minute / 60, settings.rest_reads_burst
    )


def limit_reads(
    route: Callable[Params, Awaitable[Result]],
) -> Callable[Params, Awaitable[Result]]:
    """Refuse the request with 429 (and `Retry-After`) once its address is over budget."""

    @functools.wraps(route)
    async def limited(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        budgets: Budgets = current_app.extensions[EXTENSION_KEY]
        wait = budgets.take(address_key(request.remote_addr or ""), monotonic())
        if wait:
            detail = f"too many reads from this address; retry in {wait:.1f} s"
            raise APIError(429, "RATE_LIMITED", detail, retry_after=wait)
        return await route(*args, **kwargs)

    return limited
