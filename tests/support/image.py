"""Reading a Docker build as Docker does, for tests that perform it without a daemon:
the Dockerfile's instructions, the build context that .dockerignore leaves, and the
installed server started as the image starts it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import RunningServer, wait_until_healthy


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def install_steps(instructions: list[Instruction]) -> list[str]:
    return [step.arguments for step in instructions if step.keyword == "RUN"]


def dockerignore_rules(path: Path) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) pairs in file order, as Docker reads .dockerignore: paths
    relative to the context, `*` and `?` within one path segment, `**` across any number
    of them, `!` re-including; the last rule that matches a path decides."""
    rules = []
    for line in path.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        excludes = not pattern.startswith("!")
        pattern = os.path.normpath(pattern.lstrip("!").strip().lstrip("/"))
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif pattern.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif pattern[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif pattern[index] == "?":
                regex, index = regex + "[^/]", index + 1
            else:
                regex, index = regex + re.escape(pattern[index]), index + 1
        rules.append((re.compile(regex), excludes))
    return rules


def ignored(relative: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether Docker leaves `relative` out of the context; a rule that matches one of
    its parent folders applies to everything inside it."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: depth + 1]) for depth in range(len(parts))]
    verdict = False
    for pattern, excludes in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            verdict = excludes
    return verdict


def copy_build_context(source: Path, target: Path) -> None:
    rules = dockerignore_rules(source / ".dockerignore")
    for folder, subfolders, files in os.walk(source):
        relative_folder = Path(folder).relative_to(source)
        for name in files:
            relative = (relative_folder / name).as_posix()
            if not ignored(relative, rules):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / relative, target / relative, follow_symlinks=False)
        if not any(not excludes for _, excludes in rules):  # nothing is re-included
            subfolders[:] = [
                name
                for name in subfolders
                if not ignored((relative_folder / name).as_posix(), rules)
            ]


@dataclass(frozen=True)
class Installed:
    """A virtualenv that quartchat was installed into (non-editable)."""

    venv: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The image's environment: its virtualenv first on PATH, nothing of the checkout."""
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(VIRTUAL_ENV=str(self.venv), PATH=f"{self.venv / 'bin'}:{env['PATH']}")
        env.update(extra)
        return env


def start_installed(installed: Installed, workdir: Path, dockerfile: Path) -> RunningServer:
    """The installed `quartchat serve`, run as the image runs it (its CMD): from an empty
    folder, with only the image's environment (SQLite in that folder by default)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # PORT=0: the server picks its port and logs it (wait_until_healthy reads it).
    server_env = installed.env(PORT="0", HOST="127.0.0.1", PYTHONUNBUFFERED="1")
    server_env.pop("DATABASE_URL", None)
    cmd = next(s.arguments for s in dockerfile_instructions(dockerfile) if s.keyword == "CMD")
    log_path = workdir.parent / f"{workdir.name}-server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            json.loads(cmd), cwd=workdir, env=server_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = RunningServer(process, 0, log_path, server_env)
    wait_until_healthy(server, timeout=60)
    return server
