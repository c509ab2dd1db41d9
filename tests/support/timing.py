"""Time limits in tests are ceilings, not races: each is generous for a loaded 2-core
machine (other tests and other engineers' runs share it) and still well below the time
the failure it guards against would take; the measured figure is printed (`pytest -s`
shows it) and named in the failure message."""

from __future__ import annotations

__all__ = ["within"]


def within(seconds: float, ceiling: float, what: str) -> float:
    """Print how long `what` took and fail unless it was under `ceiling` seconds;
    returns `seconds`."""
    print(f"\n{what}: {seconds * 1000:.1f} ms (ceiling {ceiling * 1000:.0f} ms)")
    assert seconds < ceiling, f"{what} took {seconds:.3f} s, over its ceiling of {ceiling} s"
    return seconds
