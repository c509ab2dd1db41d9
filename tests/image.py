"""Reading a Docker build as Docker does, for tests that perform it without a daemon:
the Dockerfile's instructions, and the build context that .dockerignore leaves."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


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
