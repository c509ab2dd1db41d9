"""The `quartchat` command: `quartchat serve`, `quartchat migrate`, `quartchat health`,
`quartchat secret`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from . import logs
from .config import ConfigError, Settings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="quartchat", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server under Hypercorn")
    serve.add_argument("--config", type=Path, help="a hypercorn.toml (default: the project's own)")
    serve.add_argument("--host", help="address to bind (default: $HOST or ::)")
    serve.add_argument("--port", type=int, help="port to bind (default: $PORT or 8000)")
    commands.add_parser("migrate", help="apply database migrations to $DATABASE_URL, then exit")
    commands.add_parser(
        "health", help="exit 0 if the server on $PORT answers /health with 200 (HEALTHCHECK)"
    )
    commands.add_parser("secret", help="print a random AUTH_SECRET, then exit")
    args = parser.parse_args(argv)
    if args.command == "secret":
        # Before reading the environment: a weak AUTH_SECRET is what it is there to replace.
        print(new_secret())
        return

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        parser.error(str(error))
    logs.configure(settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings.database_url_with_pool))
        return
    if args.command == "health":
        raise SystemExit(check_health(settings))
    overrides = {name: value for name, value in (("host", args.host), ("port", args.port)) if value}
    settings = settings.with_overrides(overrides)

    from .app import MissingFileError
    from .server import run

    try:
        run(args.config, settings)
    except MissingFileError as error:
        raise SystemExit(f"quartchat: {error}") from None


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


async def migrate(database_url: str) -> None:
    from . import db

    await db.connect(database_url, migrate=True)
    await db.disconnect()
    logging.getLogger("quartchat").info("database schema is up to date")


if __name__ == "__main__":
    main()
