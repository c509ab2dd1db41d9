"""Settings read from the environment (Railway injects PORT, DATABASE_URL and REDIS_URL)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from quartchat.config.proxies import TrustedProxies, default_forwarded_allow_ips


class ConfigError(ValueError):
    """An environment variable holds a value the server cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service; docs/configuration.md documents each one."""

    port: int = 8000
    host: str = "::"
    database_url: str = "sqlite://quartchat.sqlite3"
    cors_origins: tuple[str, ...] = ("*",)
    max_message_chars: int = 4000
    send_queue_size: int = 1024
    close_timeout: float = 2.0
    commit_window: float = 0.005
    redis_url: str = ""
    redis_prefix: str = "quartchat"
    migrate_on_start: bool = True
    db_pool_min: int = 1
    db_pool_max: int = 10
    presence_ttl: float = 30.0
    ping_interval: float = 20.0
    ws_compression: bool = False
    rate_limit_per_second: float = 10.0
    rate_limit_burst: int = 20
    rate_limit_strikes: int = 50
    control_frames_per_second: float = 5.0
    control_frames_burst: int = 20
    max_sockets_per_user: int = 20
    max_sockets_per_ip: int = 0
    socket_opens_per_user_per_minute: float = 60.0
    socket_opens_per_user_burst: int = 40
    socket_opens_per_ip_per_minute: float = 600.0
    socket_opens_per_ip_burst: int = 2000
    typing_per_second: float = 1.0
    typing_burst: int = 3
    creations_per_minute: float = 300.0
    creations_burst: int = 100
    forwarded_allow_ips: str = ""
    rest_reads_per_minute: float = 600.0
    rest_reads_burst: int = 100
    replay_messages_per_second: float = 2000.0
    replay_burst: int = 20_000
    max_request_headers: int = 100
    auth_secret: str = ""
    auth_token_ttl: int = 7 * 24 * 3600
    auth_public_key: str = ""
    auth_jwks_url: str = ""
    auth_audience: str = ""
    auth_issuer: str = ""
    auth_max_token_lifetime: int = 7 * 24 * 3600
    api_key: str = ""
    open_signup: bool = True
    console_enabled: bool = True
    access_log: bool = True
    metrics_token: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    access_log_lines_per_second: int = 100
    db_startup_timeout: float = 30.0
    db_commit_timeout: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`), falling back to the defaults."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            port=_int(env, "PORT", defaults.port, minimum=0),
            host=env.get("HOST", defaults.host).strip() or defaults.host,
            database_url=_database_url(env, defaults.database_url),
            cors_origins=_origins(env.get("CORS_ORIGINS", "*")),
            max_message_chars=_int(env, "MAX_MESSAGE_CHARS", defaults.max_message_chars),
            send_queue_size=_int(env, "SEND_QUEUE_SIZE", defaults.send_queue_size),
            close_timeout=_float(env, "CLOSE_TIMEOUT", defaults.close_timeout),
            commit_window=_float(
                env, "COMMIT_WINDOW", defaults.commit_window, zero_allowed=True, maximum=1.0
            ),
            redis_url=_redis_url(env),
            redis_prefix=env.get("REDIS_PREFIX", "").strip() or defaults.redis_prefix,
            migrate_on_start=_bool(env, "MIGRATE_ON_START", defaults.migrate_on_start),
            db_pool_min=_int(env, "DB_POOL_MIN", defaults.db_pool_min),
            db_pool_max=_int(env, "DB_POOL_MAX", defaults.db_pool_max),
            presence_ttl=_float(env, "PRESENCE_TTL", defaults.presence_ttl),
            ping_interval=_float(env, "PING_INTERVAL", defaults.ping_interval),
            ws_compression=_bool(env, "WS_COMPRESSION", defaults.ws_compression),
            rate_limit_per_second=_float(
                env, "RATE_LIMIT_PER_SECOND", defaults.rate_limit_per_second
            ),
            rate_limit_burst=_int(env, "RATE_LIMIT_BURST", defaults.rate_limit_burst),
            rate_limit_strikes=_int(env, "RATE_LIMIT_STRIKES", defaults.rate_limit_strikes),
            control_frames_per_second=_float(
                env, "CONTROL_FRAMES_PER_SECOND", defaults.control_frames_per_second
            ),
            control_frames_burst=_int(env, "CONTROL_FRAMES_BURST", defaults.control_frames_burst),
            max_sockets_per_user=_int(
                env, "MAX_SOCKETS_PER_USER", defaults.max_sockets_per_user, minimum=0
            ),
            max_sockets_per_ip=_int(
                env, "MAX_SOCKETS_PER_IP", defaults.max_sockets_per_ip, minimum=0
            ),
            socket_opens_per_user_per_minute=_float(
                env,
                "SOCKET_OPENS_PER_USER_PER_MINUTE",
                defaults.socket_opens_per_user_per_minute,
                zero_allowed=True,
            ),
            socket_opens_per_user_burst=_int(
                env, "SOCKET_OPENS_PER_USER_BURST", defaults.socket_opens_per_user_burst
            ),
            socket_opens_per_ip_per_minute=_float(
                env,
                "SOCKET_OPENS_PER_IP_PER_MINUTE",
                defaults.socket_opens_per_ip_per_minute,
                zero_allowed=True,
            ),
            socket_opens_per_ip_burst=_int(
                env, "SOCKET_OPENS_PER_IP_BURST", defaults.socket_opens_per_ip_burst
            ),
            typing_per_second=_float(env, "TYPING_PER_SECOND", defaults.typing_per_second),
            typing_burst=_int(env, "TYPING_BURST", defaults.typing_burst),
            creations_per_minute=_float(
                env,
                "CREATIONS_PER_MINUTE",
                _float(env, "REST_WRITES_PER_MINUTE", defaults.creations_per_minute),
            ),
            creations_burst=_int(
                env, "CREATIONS_BURST", _int(env, "REST_WRITES_BURST", defaults.creations_burst)
            ),
            forwarded_allow_ips=_trusted_proxies(env),
            rest_reads_per_minute=_float(
                env, "REST_READS_PER_MINUTE", defaults.rest_reads_per_minute
            ),
            rest_reads_burst=_int(env, "REST_READS_BURST", defaults.rest_reads_burst),
            replay_messages_per_second=_float(
                env, "REPLAY_MESSAGES_PER_SECOND", defaults.replay_messages_per_second
            ),
            replay_burst=_int(env, "REPLAY_BURST", defaults.replay_burst),
            max_request_headers=_int(env, "MAX_REQUEST_HEADERS", defaults.max_request_headers),
            auth_secret=_auth_secret(env),
            auth_token_ttl=_int(env, "AUTH_TOKEN_TTL", defaults.auth_token_ttl),
            auth_public_key=_public_key_pem(env),
            auth_jwks_url=_url(env, "AUTH_JWKS_URL", ("https", "http")),
            auth_audience=env.get("AUTH_AUDIENCE", "").strip(),
            auth_issuer=env.get("AUTH_ISSUER", "").strip(),
            auth_max_token_lifetime=_int(
                env, "AUTH_MAX_TOKEN_LIFETIME", defaults.auth_max_token_lifetime
            ),
            api_key=env.get("API_KEY", "").strip(),
            open_signup=_bool(env, "OPEN_SIGNUP", defaults.open_signup),
            console_enabled=_bool(env, "CONSOLE_ENABLED", defaults.console_enabled),
            access_log=_bool(env, "ACCESS_LOG", defaults.access_log),
            metrics_token=env.get("METRICS_TOKEN", "").strip(),
            log_level=_log_level(env, defaults.log_level),
            log_format=_log_format(env, defaults.log_format),
            access_log_lines_per_second=_int(
                env,
                "ACCESS_LOG_LINES_PER_SECOND",
                defaults.access_log_lines_per_second,
                minimum=0,
            ),
            db_startup_timeout=_float(
                env, "DB_STARTUP_TIMEOUT", defaults.db_startup_timeout, zero_allowed=True
            ),
            db_commit_timeout=_float(
                env, "DB_COMMIT_TIMEOUT", defaults.db_commit_timeout, maximum=600.0
            ),
        )

    def __post_init__(self) -> None:
        if not self.open_signup and not self.api_key:
            raise ConfigError("OPEN_SIGNUP=false needs API_KEY: else no one could create users")
        if self.auth_token_ttl > self.auth_max_token_lifetime:
            raise ConfigError(
                f"AUTH_TOKEN_TTL ({self.auth_token_ttl}) is over AUTH_MAX_TOKEN_LIFETIME "
                f"({self.auth_max_token_lifetime}): the server's own tokens would be refused"
            )

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """Return a copy with the given fields replaced (the app factory's test overrides)."""
        known = {field.name for field in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **dict(overrides))

    @property
    def database_url_with_pool(self) -> str:
        """DATABASE_URL with the pool sizes added for PostgreSQL (unless the URL sets them)."""
        scheme = self.database_url.split("://", 1)[0]
        if scheme not in {"postgres", "postgresql", "asyncpg"}:
            return self.database_url
        extra = [
            f"{name}={value}"
            for name, value in (("minsize", self.db_pool_min), ("maxsize", self.db_pool_max))
            if f"{name}=" not in self.database_url
        ]
        if not extra:
            return self.database_url
        separator = "&" if "?" in self.database_url else "?"
        return self.database_url + separator + "&".join(extra)

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser page served from `origin` may use the API and the sockets."""
        return "*" in self.cors_origins or origin.rstrip("/") in self.cors_origins


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    zero_allowed: bool = False,
    maximum: float = math.inf,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    too_low = value < 0 or (value == 0 and not zero_allowed)
    if not math.isfinite(value) or too_low or value > maximum:
        raise ConfigError(f"{name} must be {_float_range(zero_allowed, maximum)}, got {raw!r}")
    return value


# What SQLite takes for `synchronous`: it reads any other value as NORMAL, so a typo
# of FULL would quietly stop syncing commits.
_SQLITE_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3"}


_DATABASE_FORMS = (
    "sqlite://PATH (e.g. sqlite://quartchat.sqlite3) or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
)
_POSTGRES_SCHEMES = {"postgres", "postgresql", "asyncpg"}


def _database_url(env: Mapping[str, str], default: str) -> str:
    url = env.get("DATABASE_URL", "").strip() or default
    parts = urlsplit(url)
    # Never quote the URL itself: it may hold a password.
    if "://" not in url or not parts.scheme:
        raise ConfigError(f"DATABASE_URL has no scheme; set it to {_DATABASE_FORMS}")
    if parts.scheme not in {"sqlite", *_POSTGRES_SCHEMES}:
        raise ConfigError(
            f"DATABASE_URL: unknown scheme {parts.scheme!r}; set it to {_DATABASE_FORMS}"
        )
    if parts.scheme in _POSTGRES_SCHEMES:
        try:
            host, _ = parts.hostname, parts.port
        except ValueError:
            raise ConfigError(
                f"DATABASE_URL: the port is not a number; set it to {_DATABASE_FORMS}"
            ) from None
        if not host:
            raise ConfigError(f"DATABASE_URL names no host; set it to {_DATABASE_FORMS}")
    elif not (parts.netloc + parts.path):
        raise ConfigError(f"DATABASE_URL names no SQLite file; set it to {_DATABASE_FORMS}")
    if url.startswith("sqlite:"):
        for value in parse_qs(urlsplit(url).query, keep_blank_values=True).get("synchronous", []):
            if value.upper() not in _SQLITE_SYNCHRONOUS:
                raise ConfigError(
                    "DATABASE_URL: SQLite's synchronous must be OFF, NORMAL, FULL or EXTRA, "
                    f"got {value!r}"
                )
    return url


_REDIS_FORMS = (
    "redis://[:PASSWORD@]HOST[:PORT][/DB], rediss://… (TLS), unix://PATH, "
    "or redis+cluster://[:PASSWORD@]HOST:PORT (rediss+cluster:// with TLS) for a Redis Cluster"
)
_REDIS_SCHEMES = {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip()
    if not url or url == "memory://":
        return url
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES or "://" not in url:
        shown = f"scheme {parts.scheme!r}" if parts.scheme and "://" in url else "no scheme"
        raise ConfigError(f"REDIS_URL has {shown}; set it to {_REDIS_FORMS}, or unset it")
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ConfigError(
            f"REDIS_URL: the port is not a number; set it to {_REDIS_FORMS}"
        ) from None
    if parts.scheme == "unix" and not parts.path:
        raise ConfigError(f"REDIS_URL names no socket path; set it to {_REDIS_FORMS}")
    if parts.scheme.endswith("+cluster") and parts.path.strip("/"):
        # A cluster has only database 0: a DB number would be refused at the first command.
        raise ConfigError(f"REDIS_URL: a Redis Cluster has no /DB; set it to {_REDIS_FORMS}")
    return url


def _float_range(zero_allowed: bool, maximum: float) -> str:
    if math.isfinite(maximum):
        return f"a number from {0 if zero_allowed else 'above 0'} to {maximum:g}"
    return "a finite number of 0 or more" if zero_allowed else "a finite positive number"


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


# A token is the secret's HMAC over text anyone can read (POST /users hands one out),
# so the secret must resist an offline search: `k9x` fell in 0.05 s of pure Python.
# 32 characters of a random alphabet are well past any search; fewer distinct characters
# than this in 32 is a pattern (`aaaa…`, `0101…`), not randomness.
MIN_SECRET_CHARS = 32
MIN_SECRET_DISTINCT = 10


def _auth_secret(env: Mapping[str, str]) -> str:
    secret = env.get("AUTH_SECRET", "").strip()
    if secret and (len(secret) < MIN_SECRET_CHARS or len(set(secret)) < MIN_SECRET_DISTINCT):
        raise ConfigError(
            f"AUTH_SECRET is too weak to resist an offline guess from a token: use at least "
            f"{MIN_SECRET_CHARS} random characters, such as the output of `quartchat secret`"
        )
    return secret


def _log_level(env: Mapping[str, str], default: str) -> str:
    level = env.get("LOG_LEVEL", "").strip().upper() or default
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}"
        )
    return level


def _public_key_pem(env: Mapping[str, str]) -> str:
    """AUTH_PUBLIC_KEY as PEM; `\\n` escapes (one-line variables) become line breaks."""
    pem = env.get("AUTH_PUBLIC_KEY", "").strip().replace("\\n", "\n")
    if pem:
        try:
            load_pem_public_key(pem.encode())
        except (ValueError, TypeError) as error:
            raise ConfigError(f"AUTH_PUBLIC_KEY must be a PEM public key: {error}") from None
    return pem


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str:
    url = env.get(name, "").strip()
    if url and (urlsplit(url).scheme not in schemes or not urlsplit(url).netloc):
        raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL, got {url!r}")
    return url


def _log_format(env: Mapping[str, str], default: str) -> str:
    chosen = env.get("LOG_FORMAT", "").strip().lower() or default
    if chosen not in {"text", "json"}:
        raise ConfigError(f"LOG_FORMAT must be text or json, got {chosen!r}")
    return chosen


def _trusted_proxies(env: Mapping[str, str]) -> str:
    raw = env.get("FORWARDED_ALLOW_IPS")
    if raw is None:
        return default_forwarded_allow_ips(env)
    try:
        TrustedProxies.parse(raw)
    except ValueError as error:
        raise ConfigError(f"FORWARDED_ALLOW_IPS: {error}") from None
    return raw.strip()


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    return origins or ("*",)
