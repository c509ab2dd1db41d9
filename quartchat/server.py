"""Running the app under Hypercorn, with a shutdown that closes sockets with 1012.

Plain Hypercorn, on SIGTERM, waits for open sockets until its grace period and then
sends 1011 (or hangs, on Python 3.12.1+). A redeploy should instead tell every client
"service restart" at once, so we drive `hypercorn.asyncio.serve` ourselves.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from quart import Quart

from .app import PROJECT_ROOT, create_app
from .chat import EXTENSION_KEY, Chat
from .config import Settings

log = logging.getLogger(__name__)

DEFAULT_HYPERCORN_CONFIG = PROJECT_ROOT / "hypercorn.toml"


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def bind_address(host: str, port: int) -> str:
    """Hypercorn's bind string; `::` (dual-stack) falls back to 0.0.0.0 without IPv6."""
    if host == "::" and not ipv6_available():
        host = "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def load_config(path: Path | None, settings: Settings) -> Config:
    config_path = path or DEFAULT_HYPERCORN_CONFIG
    config = Config.from_toml(str(config_path)) if config_path.exists() else Config()
    config.bind = [bind_address(settings.host, settings.port)]
    return config


async def serve(app: Quart, config: Config) -> None:
    """Serve until SIGTERM/SIGINT; then close every socket with 1012 and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    chat: Chat = app.extensions[EXTENSION_KEY]

    def quiet_cancelled_connections(
        loop: asyncio.AbstractEventLoop, context: dict[str, object]
    ) -> None:
        # At the end of the grace period Hypercorn cancels the connection tasks that
        # linger (its ping task sleeps up to websocket_ping_interval after a socket
        # closed); asyncio would log each cancellation as an error.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    async def close_sockets_then_stop() -> None:
        await stop.wait()
        loop.set_exception_handler(quiet_cancelled_connections)
        log.info("shutting down: closing %d sockets with 1012", chat.hub.subscriber_count)
        chat.close_all_sockets()
        deadline = loop.time() + chat.settings.close_timeout
        while chat.hub.subscriber_count and loop.time() < deadline:  # noqa: ASYNC110 (once, at exit)
            await asyncio.sleep(0.02)

    await hypercorn_serve(app, config, shutdown_trigger=close_sockets_then_stop)


def run(config_path: Path | None = None, settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    config = load_config(config_path, settings)
    if config.workers > 1:
        raise SystemExit(
            "quartchat: workers > 1 needs a shared broker (REDIS_URL); with the in-memory "
            "broker each worker would be a separate chat. Set workers = 1."
        )
    app = create_app(test_config={"port": settings.port, "host": settings.host})
    asyncio.run(serve(app, config))
