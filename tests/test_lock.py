"""The lock files: what every install (scripts/bootstrap, the Dockerfile, the install
and smoke tests) takes its versions from, kept in step with pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("requirements.lock", "requirements-test.lock")
PINNED = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def pins(lock: str) -> dict[str, tuple[str, str | None]]:
    """Package -> (version, marker) of a lock file; every pin carries hashes."""
    found: dict[str, tuple[str, str | None]] = {}
    lines = (ROOT / lock).read_text().splitlines()
    for index, line in enumerate(lines):
        match = PINNED.match(line)
        if match:
            assert "--hash=sha256:" in lines[index + 1], f"{lock}: {line} has no hash"
            name, pinned, marker = match.groups()
            found[canonicalize_name(name)] = (pinned, marker)
    return found


def pyproject_requirements(extra: str | None) -> list[Requirement]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    asked = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    if extra:
        asked += project["project"]["optional-dependencies"][extra]
    return [Requirement(text) for text in asked]


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_was_made_from_this_pyproject(lock: str) -> None:
    digest = subprocess.run(
        [sys.executable, str(ROOT / "scripts/lock-digest"), str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    header = (ROOT / lock).read_text().splitlines()[:3]
    assert f"# pyproject-digest: {digest}" in header, (
        f"pyproject.toml changed since {lock} was made: run scripts/lock, then scripts/test"
    )


@pytest.mark.parametrize(("lock", "extra"), [(LOCKS[0], None), (LOCKS[1], "test")])
@pytest.mark.parametrize("python", ["3.11.2", "3.11.7", "3.12.1", "3.13.0"])
def test_every_requirement_is_pinned_within_its_range(
    lock: str, extra: str | None, python: str
) -> None:
    locked = pins(lock)
    environment = {"python_version": python[:4], "python_full_version": python}
    for requirement in pyproject_requirements(extra):
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {requirement}: run scripts/lock"
        pinned, marker = locked[name]
        assert marker is None or Marker(marker).evaluate(environment)
        assert requirement.specifier.contains(pinned, prereleases=True), (
            f"{lock} pins {name}=={pinned}, outside pyproject.toml's {requirement}"
        )


def test_the_runtime_lock_is_the_test_lock_less_the_tools() -> None:
    runtime, everything = pins(LOCKS[0]), pins(LOCKS[1])
    assert set(runtime) < set(everything)
    assert {name: everything[name] for name in runtime} == runtime


def test_early_311_gets_what_redis_needs_there() -> None:
    """Debian 12's python3 is 3.11.2: redis needs async-timeout below 3.11.3."""
    for lock in LOCKS:
        _, marker = pins(lock)["async-timeout"]
        assert marker is not None
        assert Marker(marker).evaluate({"python_full_version": "3.11.2"})
        assert not Marker(marker).evaluate({"python_full_version": "3.11.7"})
