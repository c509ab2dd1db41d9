"""The code stays lint-clean, formatted and type-checked (strict for the package and the tests)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import PROJECT_ROOT
from tests.support.tiers import TIERS, process_tier

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "mypy": [sys.executable, "-m", "mypy"],
}


@pytest.mark.parametrize("name", CHECKS)
def test_clean(name: str) -> None:
    result = subprocess.run(
        CHECKS[name], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


NO_TIER_OR_TWO = " or ".join(
    ["not (unit or server or service or browser)"]
    + [
        f"({lower} and {higher})"
        for index, lower in enumerate(TIERS)
        for higher in TIERS[index + 1 :]
    ]
)


def test_every_test_has_exactly_one_tier() -> None:
    """tests/support/tiers.py gives each test one of unit, server, service, browser:
    none is left without one, none has two (pyproject.toml declares them)."""
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*collect, "-m", NO_TIER_OR_TWO],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"no tests collected \(\d+ deselected\) in .*", summary), result.stdout


@pytest.mark.parametrize(
    ("command", "env", "tier"),
    [
        (["ruff", "check", "."], {}, "unit"),
        (["python", "-m", "quartchat", "serve"], {"DATABASE_URL": "sqlite://x"}, "server"),
        (["scripts/serve"], {}, "server"),
        (
            ["python", "-m", "quartchat", "serve"],
            {"REDIS_URL": "redis://127.0.0.1:6379/0"},
            "service",
        ),
        (
            ["python", "-m", "quartchat", "serve"],
            {"DATABASE_URL": "postgres://localhost/t"},
            "service",
        ),
        # A stand-in that never answers, or a port that is not a number: no PostgreSQL needed.
        (["quartchat", "serve"], {"DATABASE_URL": "postgres://127.0.0.1:40001/t"}, "server"),
        (["quartchat", "serve"], {"DATABASE_URL": "postgres://u@db:port/t"}, "server"),
        (["/usr/sbin/nginx", "-p", "home"], {}, "service"),
        (["redis-server", "--port", "0"], {}, "service"),
        (["/usr/bin/chromium", "--headless"], {}, "browser"),
        ([".venv/lib/playwright/driver/node", "cli.js"], {}, "browser"),
    ],
)
def test_a_started_program_needs_its_tier(
    command: list[str], env: dict[str, str], tier: str
) -> None:
    assert process_tier(command, env) == tier
