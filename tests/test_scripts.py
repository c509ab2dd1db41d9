"""README commands run as a newcomer runs them: `scripts/serve [ARGS]`, `scripts/test --tier`."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT, RunningServer, wait_until_healthy


def checkout_with_ready_venv(tmp_path: Path) -> Path:
    """A copy of the checkout's scripts whose `.venv` bootstrap finds already installed
    (the stamp of a plain install is there), running the test run's own packages: the
    test exercises the scripts without installing anything."""
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "scripts", root / "scripts")
    locked = ("pyproject.toml", "requirements.lock", "requirements-test.lock")
    for name in locked:
        shutil.copy2(PROJECT_ROOT / name, root / name)
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site_packages] = venv.glob("lib/python*/site-packages")
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "test-run.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    command = venv / "bin" / "quartchat"
    command.write_text(
        f"#!{venv / 'bin' / 'python'}\nfrom quartchat.process.cli import main\nmain()\n"
    )
    command.chmod(0o755)
    key = hashlib.sha256(b"".join((root / name).read_bytes() for name in locked))
    (venv / ".lock-key").write_text(key.hexdigest()[:16] + "\n")
    (venv / ".installed-base").touch()
    return root


@pytest.mark.server
def test_serve_passes_its_arguments_to_quartchat_serve(tmp_path: Path) -> None:
    root = checkout_with_ready_venv(tmp_path)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite://{tmp_path / 'chat.sqlite3'}",
    }
    env.pop("PORT", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(root / "scripts" / "serve"), "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process=process, port=0, log_path=log_path)
    try:
        wait_until_healthy(server, timeout=60)  # reads the port the server logs
        assert server.port != 0
    finally:
        server.stop(signal.SIGTERM)


@pytest.mark.unit  # collects only: starts no server
def test_test_runs_one_tier_given_with_tier(tmp_path: Path) -> None:
    root = checkout_with_ready_venv(tmp_path)
    (root / ".venv" / ".installed-test").touch()
    (root / "tests").symlink_to(PROJECT_ROOT / "tests")
    test = [str(root / "scripts" / "test"), "-p", "no:cacheprovider"]
    listed = subprocess.run(
        [*test, "--tier", "unit", "--collect-only", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "tests/test_quality.py::test_clean[mypy]" in listed.stdout
    assert "tests/test_scripts.py::test_serve_passes_its_arguments_to_quartchat_serve" not in (
        listed.stdout
    )
    assert re.search(r"^\d+/\d+ tests collected \(\d+ deselected\)", listed.stdout, re.M)
    refused = subprocess.run(
        [*test, "--tier", "fast"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "--tier takes unit, server, service, browser or slow, not 'fast'" in refused.stderr
