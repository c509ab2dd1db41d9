"""One scrape for every worker: with `workers > 1`, whichever worker answers `/metrics`
asks its siblings for their metrics at that moment and adds them up.

Each worker serves its own exposition on a Unix socket, `<pid>.sock`, in a private
folder that `quartchat serve` makes for its workers (and from which it removes a dead
worker's socket). A scrape reads every sibling's socket, then merges: quartchat's
counters, histograms and gauges are summed over the workers, so totals are exact at the
moment of the scrape; the process and Python runtime metrics (`process_*`, `python_*`)
are kept per worker, with a `pid` label, as Prometheus' own multiprocess mode keeps its
per-process gauges.

Why not that multiprocess mode: it writes every increment to a memory-mapped file,
which made a histogram observation 2-3 times as slow (2.0-3.6 -> 6.0-11.7 us, three runs
on the loaded 2-core VM), and the fan-out histogram is observed on every socket write;
it also leaves out custom collectors (open sockets, rooms, the process metrics). Here
the hot paths stay plain ints and in-memory metrics, and the scrape pays instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

# A sibling busy for longer than this is left out of the scrape (and logged); Prometheus'
# own scrape timeout is 10 s by default.
SIBLING_TIMEOUT = 2.0
PER_WORKER_PREFIXES = ("process_", "python_")


def socket_path(folder: Path, pid: int) -> Path:
    return folder / f"{pid}.sock"


def forget_worker(folder: Path, pid: int) -> None:
    """A worker exited: scrapes stop asking it (the parent calls this, like
    prometheus_client's `mark_process_dead`)."""
    with contextlib.suppress(FileNotFoundError):
        socket_path(folder, pid).unlink()


class WorkerMetrics:
    """This worker's side: answer siblings, and gather them for a scrape."""

    def __init__(self, folder: Path, expose: Callable[[], bytes]) -> None:
        self.folder = folder
        self._expose = expose
        self._pid = os.getpid()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        path = socket_path(self.folder, self._pid)
        self._server = await asyncio.start_unix_server(self._answer, path=str(path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            forget_worker(self.folder, self._pid)

    async def _answer(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self._expose())
            await writer.drain()
        finally:
            writer.close()

    async def gather(self) -> list[Metric]:
        """Every live worker's metrics, merged (see the module's docstring)."""
        siblings = [path for path in self.folder.glob("*.sock") if path.stem != str(self._pid)]
        answers = await asyncio.gather(*(_read(path) for path in siblings))
        texts = {self._pid: self._expose().decode()}
        for path, text in zip(siblings, answers, strict=True):
            if text is not None:
                texts[int(path.stem)] = text
        merged = merge(texts)
        merged.append(
            GaugeMetricFamily(
                "quartchat_workers",
                "Worker processes whose metrics this scrape adds up",
                len(texts),
            )
        )
        return merged


async def _read(path: Path) -> str | None:
    try:
        async with asyncio.timeout(SIBLING_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(str(path))
            try:
                return (await reader.read()).decode()
            finally:
                writer.close()
    except (OSError, TimeoutError) as error:
        # A worker that just exited (its socket not yet removed) refuses the connection.
        log.warning("metrics: worker %s did not answer the scrape: %r", path.stem, error)
        return None


def merge(texts: dict[int, str]) -> list[Metric]:
    """The metrics of several workers, from their expositions, as one set of families."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for pid, text in texts.items():
        for family in text_string_to_metric_families(text):
            families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            samples = values.setdefault(family.name, {})
            per_worker = family.name.startswith(PER_WORKER_PREFIXES)
            for sample in family.samples:
                labels = {**sample.labels, "pid": str(pid)} if per_worker else sample.labels
                key = (sample.name, tuple(sorted(labels.items())))
                if key not in samples:
                    samples[key] = sample.value
                elif family.name.endswith("_created"):  # when the first worker started it
                    samples[key] = min(samples[key], sample.value)
                else:
                    samples[key] += sample.value
    for name, family in families.items():
        family.samples = [
            Sample(sample, dict(labels), value) for (sample, labels), value in values[name].items()
        ]
    return list(families.values())


class Gathered(Collector):
    """Metrics already collected, for `generate_latest`."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)
