"""Startup and shutdown run in one stated order, seen in a real server's log."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from quartchat.config.settings import Settings
from quartchat.process.lifecycle import Lifecycle, Step
from quartchat.rooms.chat import Chat
from tests.support import start_server

STARTUP = [
    "framework shortcuts",
    "database",
    "directory",
    "broker",
    "relay",
    "presence heartbeat",
    "pinger",
    "sockets",
    "fast paths",
    "garbage collector tuning",
]
STEP_LINE = re.compile(
    r"quartchat\.process\.lifecycle \[[^\]]*\] (startup|shutdown): (.+)$", re.MULTILINE
)


@pytest.mark.server
def test_a_served_process_starts_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    assert server.stop() == 0
    steps = STEP_LINE.findall(server.log())
    assert steps == [
        *(("startup", name) for name in STARTUP),
        *(("shutdown", name) for name in reversed(STARTUP)),
    ], server.log()


class Recorded(Lifecycle):
    """The real sequencing over recorded steps, one of which fails."""

    def __init__(self, failing: str, stage: str) -> None:
        super().__init__(Settings(), Chat(Settings()))
        self.record: list[str] = []
        self._failing = failing
        self._stage = stage

    def steps(self) -> list[Step]:
        return [
            Step(name, self._act("start", name), self._act("stop", name))
            for name in ("first", "second", "third")
        ]

    def _act(self, stage: str, name: str) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            self.record.append(f"{stage} {name}")
            if (stage, name) == (self._stage, self._failing):
                raise RuntimeError(f"{name} failed")

        return act


async def test_a_failed_start_stops_what_had_started_in_reverse() -> None:
    lifecycle = Recorded(failing="third", stage="start")
    with pytest.raises(RuntimeError, match="third failed"):
        await lifecycle.start()
    assert lifecycle.record == [
        "start first",
        "start second",
        "start third",
        "stop second",
        "stop first",
    ]


async def test_a_failed_stop_does_not_skip_the_next_ones() -> None:
    lifecycle = Recorded(failing="second", stage="stop")
    await lifecycle.start()
    await lifecycle.stop()
    assert lifecycle.record[3:] == ["stop third", "stop second", "stop first"]
