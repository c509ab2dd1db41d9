"""`static/quartchat.d.ts` checked by TypeScript (`tsc --noEmit --strict`) against a typed
use of the library, and against a wrong one that it must refuse."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.browser  # needs Node.js and its npm tools (tests/support/tiers.py)

TSC = PROJECT_ROOT / ".tools" / "typescript" / "node_modules" / ".bin" / "tsc"
USAGE = Path(__file__).with_name("usage.ts")
OPTIONS = [
    "--noEmit",
    "--strict",
    "--target",
    "es2022",
    "--module",
    "es2022",
    "--moduleResolution",
    "bundler",
    "--lib",
    "es2022,dom",
]


def tsc(*files: Path) -> subprocess.CompletedProcess[str]:
    assert TSC.exists(), "install TypeScript first (scripts/test does, into .tools/)"
    return subprocess.run(
        [str(TSC), *OPTIONS, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


def test_typed_usage_compiles_under_strict() -> None:
    result = tsc(USAGE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wrong_usage_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.ts"
    library = (PROJECT_ROOT / "static" / "quartchat.js").as_posix()
    wrong.write_text(
        f'import {{ Room }} from "{library}";\n'
        'const room = new Room({ url: "http://x", roomId: "r" });\n'
        "room.send(42);\n"
        'room.addEventListener("message", (e) => e.detail.sequence);\n'
    )
    result = tsc(wrong)
    assert result.returncode != 0
    for expected in ("userId", "number", "sequence"):
        assert expected in result.stdout, result.stdout
