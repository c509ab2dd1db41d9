"""Hypercorn's asyncio worker, given listening sockets that `quartchat serve` opened.

Hypercorn 0.18's public `hypercorn.asyncio.serve(app, config, shutdown_trigger=…)`
opens its listening sockets itself and never hands them out. `quartchat serve` has to
see them close: on SIGTERM intake stops first, and sockets get their 1012 only once the
listeners are closed, so a client reconnecting at once reaches another instance instead
of the one going away (server.py). So it opens them itself (`Config.create_sockets`)
and calls what `serve` calls, `hypercorn.asyncio.run.worker_serve(app, config,
sockets=…, shutdown_trigger=…)` (hypercorn/asyncio/run.py), with the app wrapped as
`serve` wraps it (`hypercorn.utils.wrap_app`, hypercorn/utils.py). `serve`'s warnings
about `debug` and `workers` are left out: server.py runs the workers itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.typing import AppWrapper, Framework
from hypercorn.utils import wrap_app


def wrapped(app: Framework, config: Config) -> AppWrapper:
    """The app as Hypercorn serves it (the startup probe serves the very same object)."""
    return wrap_app(app, config.wsgi_max_body_size, "asgi")


async def serve_on(
    app: AppWrapper,
    config: Config,
    sockets: Sockets,
    shutdown_trigger: Callable[[], Awaitable[None]],
) -> None:
    """`hypercorn.asyncio.serve` for a `wrapped` app, on listening sockets opened
    beforehand."""
    await worker_serve(
        app,
        config,
        sockets=sockets,
        shutdown_trigger=shutdown_trigger,
    )
