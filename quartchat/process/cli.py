"""The `quartchat` command: `quartchat serve`, `quartchat migrate`, `quartchat health`,
`quartchat secret`.

Also `python -m quartchat`. A mistake in the settings or the environment (a bad
variable, a port in use, a file that cannot be written) ends the command with exit
status 2 and one log line naming the setting and the fix; a database that never
answered, or a migration that failed, with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
import tomllib
import urllib.request
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from quartchat.config import logs
from quartchat.config.settings import ConfigError, Settings
from quartchat.process import startup

log = logging.getLogger("quartchat")

OPERATOR_ERROR = 2
# What each command reads from the environment; docs/configuration.md says more.
COMMON_VARIABLES = "LOG_LEVEL, LOG_FORMAT"
SERVE_VARIABLES = (
    "PORT, HOST, DATABASE_URL, DB_POOL_MIN, DB_POOL_MAX, DB_STARTUP_TIMEOUT, "
    "MIGRATE_ON_START, REDIS_URL, REDIS_PREFIX, ACCESS_LOG, ACCESS_LOG_LINES_PER_SECOND, "
    "and every other variable of docs/configuration.md"
)


def version() -> str:
    try:
        return metadata.version("quartchat")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="quartchat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"quartchat {version()}")
    commands = top.add_subparsers(dest="command", required=True)
    serve = _command(
        commands,
        "serve",
        "run the server under Hypercorn",
        SERVE_VARIABLES,
    )
    serve.add_argument("--config", type=Path, help="a hypercorn.toml (default: the project's own)")
    serve.add_argument("--host", help="address to bind (default: $HOST or ::)")
    serve.add_argument(
        "--port",
        type=int,
        help="port to bind (default: $PORT or 8000); 0 picks a free one, which the log names",
    )
    _command(
        commands,
        "migrate",
        "apply database migrations to $DATABASE_URL, then exit (non-zero if one fails)",
        "DATABASE_URL, DB_STARTUP_TIMEOUT",
    )
    _command(
        commands,
        "health",
        "exit 0 if the server on $PORT answers /health with 200 (HEALTHCHECK)",
        "PORT, HOST",
    )
    _command(
        commands,
        "secret",
        "print a random AUTH_SECRET (64 URL-safe characters), then exit",
        "none",
    )
    return top


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    variables: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"environment variables: {variables}; {COMMON_VARIABLES}",
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "secret":
        # Before reading the environment: a weak AUTH_SECRET is what it is there to replace.
        print(new_secret())
        return
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        _fail_early(str(error))
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "migrate":
        raise SystemExit(asyncio.run(migrate(settings)))
    if args.command == "health":
        raise SystemExit(check_health(settings))
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port))
        if value is not None
    }
    raise SystemExit(serve(args.config, settings.with_overrides(overrides)))


def _fail_early(message: str) -> None:
    """A setting is wrong, maybe LOG_FORMAT itself: one line in the format asked for if
    it can be read, else the readable one."""
    wanted = os.environ.get("LOG_FORMAT", "").strip().lower()
    logs.configure("INFO", "json" if wanted == "json" else "text")
    log.error("%s", message)
    raise SystemExit(OPERATOR_ERROR)


def serve(config_path: Path | None, settings: Settings) -> int:
    from hypercorn.utils import LifespanFailureError

    from quartchat.process.app import MissingFileError
    from quartchat.process.server import load_config, run

    try:
        config = load_config(config_path, settings)
        if settings.port == 0 and config.workers > 1:
            # Every worker binds for itself: they must share one port, picked here.
            settings = settings.with_overrides({"port": startup.free_port(config)})
            config = load_config(config_path, settings)
        startup.check_bind(config, settings.host, settings.port)
        run(config_path, settings)
    except MissingFileError as error:
        log.error("%s", error)
        return OPERATOR_ERROR
    except SystemExit as stop:  # server.run refusing a setting (workers without Redis)
        if not isinstance(stop.code, str):
            raise
        log.error("%s", stop.code.removeprefix("quartchat: "))
        return OPERATOR_ERROR
    except tomllib.TOMLDecodeError as error:
        log.error(
            "the Hypercorn settings file %s is not valid TOML (%s); fix it, or pass "
            "another with --config",
            config_path,
            error,
        )
        return OPERATOR_ERROR
    except startup.StartupError as error:
        log.error("%s", error)
        return error.exit_status
    except LifespanFailureError as error:  # a step failed (Quart logged its traceback)
        log.error("startup failed: %s", error)
        return 1
    return 0


def new_secret() -> str:
    """A random AUTH_SECRET: 48 bytes (384 bits) from the OS, URL-safe (64 characters)."""
    return secrets.token_urlsafe(48)


def check_health(settings: Settings) -> int:
    """0 when this host's server answers `/health` with 200, else 1 (and why, on stderr)."""
    host = settings.host if settings.host not in {"::", "0.0.0.0"} else "127.0.0.1"
    authority = f"[{host}]" if ":" in host else host
    url = f"http://{authority}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"quartchat health: {url}: {error}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


async def migrate(settings: Settings) -> int:
    """Apply the migrations; 0 when the schema is up to date, 1 (and the error) if not.

    The database is closed however it ends: aiosqlite's thread, left open, kept the
    process alive after a failed migration."""
    from quartchat.storage import db

    url = settings.database_url_with_pool
    try:
        # The pre-deploy step may run while the database is still starting.
        await startup.open_database(
            url, migrate=True, within=settings.db_startup_timeout, stopping=asyncio.Event()
        )
    except startup.StartupError as error:
        log.error("%s", error)
        return error.exit_status
    except Exception as error:
        log.error(
            "migration failed on the database at %s: %s: %s",
            startup.database_host(url),
            type(error).__name__,
            error,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return 1
    finally:
        with contextlib.suppress(Exception):
            await db.disconnect()
    log.info("database schema is up to date")
    return 0


if __name__ == "__main__":
    main()
