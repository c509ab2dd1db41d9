"""The garbage-collection policy of a serving process."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from quartchat.rooms import gc_tuning
from quartchat.rooms.hub import Hub


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def automatic_collections_off() -> Iterator[None]:
    """No automatic collections meanwhile, so only the policy under test can collect."""
    threshold = gc.get_threshold()
    gc.disable()
    yield
    gc.enable()
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_exists_and_spaces_out_young_collections(
    automatic_collections_off: None,
) -> None:
    gc_tuning.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == gc_tuning.YOUNG_THRESHOLD


async def test_sockets_closing_bring_a_full_collection(
    automatic_collections_off: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_tuning, "CHECK_INTERVAL_SECONDS", 0.01)
    hub = Hub()
    task = asyncio.create_task(gc_tuning.collect_after_closes(hub))
    try:
        garbage = weakref.ref(Cycle())
        await asyncio.sleep(0.05)
        assert garbage() is not None  # nothing closed: nothing collected
        hub.departures += gc_tuning.CLOSES_PER_COLLECTION
        await asyncio.sleep(0.05)
        assert garbage() is None
    finally:
        task.cancel()
