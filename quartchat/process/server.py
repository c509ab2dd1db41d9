"""Running the app under Hypercorn, with a shutdown that closes sockets with 1012.

Plain Hypercorn, on SIGTERM, waits for open sockets until its grace period and then
sends 1011 (or hangs, on Python 3.12.1+). A redeploy should instead tell every client
"service restart" at once, so we drive Hypercorn's worker ourselves. Intake stops
first: handshakes are refused (503) from the signal on, and the listening sockets are
closed before any socket gets its 1012, so a client reconnecting at once reaches
another instance (or fails fast and retries) instead of the one going away.

Driving the worker also lets startup prove the fast paths with the app and settings
that serve clients before the listeners accept (lifecycle's "fast paths" step); if one
fails, the process logs one line and exits with FAST_PATH_BROKEN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypercorn.config import Config
from quart import Quart

from quartchat.config import logs
from quartchat.config.settings import Settings
from quartchat.internals.accesslog import AccessLogger
from quartchat.internals.worker import serve_on, wrapped
from quartchat.process.app import PROJECT_ROOT, MissingFileError, create_app
from quartchat.process.lifecycle import lifecycle_of
from quartchat.process.probe import FastPathBroken
from quartchat.rooms.chat import EXTENSION_KEY, Chat
from quartchat.rooms.worker_metrics import forget_worker

log = logging.getLogger(__name__)

DEFAULT_HYPERCORN_CONFIG = PROJECT_ROOT / "hypercorn.toml"
# Hypercorn closes its listeners a few loop turns after the shutdown trigger returns; the
# 1012s wait for that, but never longer than this.
LISTENERS_CLOSE_WITHIN = 0.5
# A process's exit status when a fast path failed the startup probe: a worker that
# exits with it is not restarted (it would fail the same way).
FAST_PATH_BROKEN = 3


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
    if not config_path.is_file():
        # Hypercorn's defaults would quietly accept 16 MiB frames and a backlog of 100.
        raise MissingFileError(f"the Hypercorn settings file {config_path} does not exist")
    config = Config.from_toml(str(config_path))
    config.bind = [bind_address(settings.host, settings.port)]
    config.logger_class = AccessLogger
    # A start may wait DB_STARTUP_TIMEOUT for the database, then migrate.
    config.startup_timeout = max(config.startup_timeout, settings.db_startup_timeout + 60)
    AccessLogger.lines_per_second = settings.access_log_lines_per_second
    if not settings.access_log:
        config.accesslog = None
    return config


async def serve(app: Quart, config: Config) -> None:
    """Serve until SIGTERM/SIGINT; then stop intake, close every socket with 1012, stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    chat: Chat = app.extensions[EXTENSION_KEY]

    def stop_intake() -> None:
        chat.stop_intake()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_intake)
    closing: list[asyncio.Task[None]] = []
    sockets = config.create_sockets()
    listening = [*sockets.secure_sockets, *sockets.insecure_sockets]
    asgi_app = wrapped(app, config)
    lifecycle = lifecycle_of(app)
    lifecycle.tunes_garbage_collector = True
    # The sockets are bound, not listening: worker_serve listens once startup, the
    # probe included, is over.
    lifecycle.prove_fast_paths(asgi_app, config)

    def quiet_cancelled_connections(
        loop: asyncio.AbstractEventLoop, context: dict[str, object]
    ) -> None:
        # At the end of the grace period Hypercorn cancels the connection tasks that
        # linger (its ping task sleeps up to websocket_ping_interval after a socket
        # closed); asyncio would log each cancellation as an error.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    async def close_sockets_once_not_listening() -> None:
        await _listeners_closed(listening)
        log.info("shutting down: closing %d sockets with 1012", chat.hub.subscriber_count)
        chat.close_all_sockets()

    async def shutdown_trigger() -> None:
        await stop.wait()
        loop.set_exception_handler(quiet_cancelled_connections)
        # Returning makes Hypercorn close its listeners, then wait (up to its
        # graceful_timeout) for the connections, which end as their clients answer.
        closing.append(asyncio.create_task(close_sockets_once_not_listening()))

    await serve_on(asgi_app, config, sockets, shutdown_trigger)


async def _listeners_closed(listening: list[socket.socket]) -> None:
    """Wait (a few loop turns) for Hypercorn to close the listening sockets: asyncio and
    uvloop both close or detach the socket objects they were given."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LISTENERS_CLOSE_WITHIN):
            while any(sock.fileno() != -1 for sock in listening):  # noqa: ASYNC110
                await asyncio.sleep(0.001)


def run(config_path: Path | None = None, settings: Settings | None = None) -> None:
    """Serve in this process, or in `workers` processes sharing the port (SO_REUSEPORT)."""
    settings = settings or Settings.from_env()
    config = load_config(config_path, settings)
    if config.workers <= 1:
        serve_one(config_path, settings)
        return
    if not settings.redis_url:
        raise SystemExit(
            "quartchat: workers > 1 needs a shared broker (set REDIS_URL); with the "
            "in-memory broker every worker would be a separate chat. Set workers = 1."
        )
    raise SystemExit(run_workers(config_path, settings, config.workers))


def serve_one(
    config_path: Path | None, settings: Settings, metrics_folder: Path | None = None
) -> None:
    """Serve in this process; a worker among several shares its metrics in `metrics_folder`."""
    if logs.configured_handler() is None:  # a worker process, spawned afresh
        logs.configure(settings.log_level, settings.log_format)
    config = load_config(config_path, settings)
    app = create_app(settings)
    if metrics_folder is not None:
        chat: Chat = app.extensions[EXTENSION_KEY]
        chat.metrics.share_with_workers(metrics_folder)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        try:
            runner.run(serve(app, config))
        except FastPathBroken as broken:
            log.critical("%s", broken.line())
            raise SystemExit(FAST_PATH_BROKEN) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux, macOS): the benchmark's storm
    and fan-out scenarios spend much of their time in the event loop itself."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_workers(config_path: Path | None, settings: Settings, count: int) -> int:
    """Start `count` worker processes, pass SIGTERM/SIGINT on to them, restart any that
    dies on its own, and return non-zero if any ended badly during shutdown."""
    context = multiprocessing.get_context("spawn")
    stopping = False
    # Private to this user (mkdtemp makes it 0700): each worker's metrics socket.
    metrics_folder = Path(tempfile.mkdtemp(prefix="quartchat-metrics-"))

    def start_worker() -> multiprocessing.process.BaseProcess:
        worker = context.Process(
            target=serve_one, args=(config_path, settings, metrics_folder), daemon=False
        )
        worker.start()
        return worker

    workers = [start_worker() for _ in range(count)]
    broken = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for index, worker in enumerate(workers):
            worker.join(timeout=0.2)
            if worker.exitcode == FAST_PATH_BROKEN and not stopping:
                broken = True  # its log line says why; the others would fail the same way
                stop(signal.SIGTERM, None)
            elif worker.exitcode is not None and not stopping:
                log.error("worker %s exited with %s; starting another", worker.pid, worker.exitcode)
                if worker.pid is not None:
                    forget_worker(metrics_folder, worker.pid)
                workers[index] = start_worker()
    for worker in workers:
        worker.join()
    shutil.rmtree(metrics_folder, ignore_errors=True)
    if broken:
        return FAST_PATH_BROKEN
    return 0 if all(worker.exitcode == 0 for worker in workers) else 1
