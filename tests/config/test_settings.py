"""Settings from the environment."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import pytest

from quartchat.config.proxies import RAILWAY_VARIABLES
from quartchat.config.settings import ConfigError, Settings
from tests.support import PROJECT_ROOT


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8000
    assert settings.host == "::"
    assert settings.database_url == "sqlite://quartchat.sqlite3"
    assert settings.cors_origins == ("*",)
    assert settings.max_message_chars == 4000


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "HOST": "0.0.0.0",
            "DATABASE_URL": "postgresql://u@h/db",
            "CORS_ORIGINS": "https://a.example, https://b.example/",
            "MAX_MESSAGE_CHARS": "10",
        }
    )
    assert (settings.port, settings.host) == (9000, "0.0.0.0")
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.origin_allowed("https://b.example")
    assert not settings.origin_allowed("https://c.example")
    assert settings.max_message_chars == 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "-1"),
        ("MAX_MESSAGE_CHARS", "0"),
        ("LOG_LEVEL", "loud"),
        ("AUTH_PUBLIC_KEY", "not a key"),
        ("AUTH_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"),
        ("AUTH_JWKS_URL", "ftp://idp.example/jwks"),
        ("AUTH_JWKS_URL", "jwks.json"),
        ("AUTH_MAX_TOKEN_LIFETIME", "0"),
        ("OPEN_SIGNUP", "maybe"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_closed_signup_needs_the_server_key() -> None:
    with pytest.raises(ConfigError, match="OPEN_SIGNUP=false needs API_KEY"):
        Settings.from_env({"OPEN_SIGNUP": "false"})
    assert not Settings.from_env({"OPEN_SIGNUP": "false", "API_KEY": "k" * 40}).open_signup


def test_own_tokens_may_not_outlive_the_lifetime_ceiling() -> None:
    with pytest.raises(ConfigError, match="AUTH_TOKEN_TTL"):
        Settings.from_env({"AUTH_TOKEN_TTL": "7200", "AUTH_MAX_TOKEN_LIFETIME": "3600"})


def test_overrides_reject_unknown_names() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        Settings().with_overrides({"nonsense": 1})


def test_close_timeout_is_read_from_the_environment() -> None:
    assert Settings.from_env({"CLOSE_TIMEOUT": "0.5"}).close_timeout == 0.5
    with pytest.raises(ConfigError, match="CLOSE_TIMEOUT"):
        Settings.from_env({"CLOSE_TIMEOUT": "0"})


def test_commit_window_may_be_zero_but_not_negative() -> None:
    assert Settings.from_env({}).commit_window == 0.005
    assert Settings.from_env({"COMMIT_WINDOW": "0"}).commit_window == 0
    assert Settings.from_env({"COMMIT_WINDOW": "0.02"}).commit_window == 0.02
    assert Settings.from_env({"COMMIT_WINDOW": "1"}).commit_window == 1
    # "5" meant as milliseconds would hold every busy commit five seconds.
    for bad in ("-0.001", "nan", "inf", "soon", "5"):
        with pytest.raises(ConfigError, match="COMMIT_WINDOW"):
            Settings.from_env({"COMMIT_WINDOW": bad})


def test_a_secret_open_to_brute_force_is_refused() -> None:
    for weak in ("k9x", "x" * 31, "a" * 64, "01" * 32):
        with pytest.raises(ConfigError, match=r"AUTH_SECRET is too weak.*quartchat secret"):
            Settings.from_env({"AUTH_SECRET": weak})
    strong = "Vq3-8kZ_pW1xN7rT0bYc5mLs2dHf9gJa"
    assert Settings.from_env({"AUTH_SECRET": f" {strong} "}).auth_secret == strong
    assert Settings.from_env({}).auth_secret == ""  # unset: authentication off


def test_a_sqlite_synchronous_that_sqlite_would_misread_is_refused() -> None:
    url = "sqlite://chat.sqlite3?synchronous=normal"
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url
    # SQLite reads any value it does not know as NORMAL: a typo of FULL stops syncing.
    with pytest.raises(ConfigError, match=r"DATABASE_URL.*synchronous.*'FULLL'"):
        Settings.from_env({"DATABASE_URL": "sqlite://chat.sqlite3?synchronous=FULLL"})


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache:6379/0",
        "rediss://:secret@cache:6380",
        "unix:///run/redis.sock",
        "redis+cluster://10.0.0.1:7000",
        "rediss+cluster://:secret@cluster.example:7000/",
    ],
)
def test_redis_url_may_name_a_server_or_a_cluster(url: str) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+sentinel://cache", "scheme 'redis+sentinel'"),
        ("redis+cluster://10.0.0.1:7000/2", "a Redis Cluster has no /DB"),
        ("redis+cluster://10.0.0.1:port", "the port is not a number"),
    ],
)
def test_a_redis_url_the_broker_cannot_use_is_refused(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=f"REDIS_URL.*{re.escape(complaint)}.*redis\\+cluster://"):
        Settings.from_env({"REDIS_URL": url})


def test_log_level_is_a_setting_in_any_case() -> None:
    assert Settings.from_env({}).log_level == "INFO"
    assert Settings.from_env({"LOG_LEVEL": "debug"}).log_level == "DEBUG"


class _RecordingEnvironment(Mapping[str, str]):
    """An empty environment that notes every variable the settings ask it for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _documented_configuration_variables() -> set[str]:
    page = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_configuration_page_lists_every_variable_and_nothing_else() -> None:
    environment = _RecordingEnvironment()
    Settings.from_env(environment)
    # Railway's own variables are read only to detect Railway; they are not settings.
    read = environment.asked - set(RAILWAY_VARIABLES)
    assert read, "the recording environment saw no variable"
    assert _documented_configuration_variables() == read
