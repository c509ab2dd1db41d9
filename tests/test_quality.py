"""The code stays lint-clean, formatted and type-checked (strict for the package and the tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import PROJECT_ROOT

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
