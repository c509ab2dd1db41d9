"""Prometheus metrics of one process, served at `GET /metrics` (with `workers > 1`,
added up over the workers by `worker_metrics`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from quartchat.broker import Broker
from quartchat.rooms.directory import Directory
from quartchat.rooms.hub import Hub
from quartchat.rooms.worker_metrics import Gathered, WorkerMetrics
from quartchat.storage.store import MessageStore


class _ScrapeTimeCollector(Collector):
    """Read from the hub, the directory, the store and the broker when scraped, so the
    per-frame, handshake and commit paths only bump plain ints."""

    def __init__(self, hub: Hub, directory: Directory, store: MessageStore, broker: Broker) -> None:
        self._hub = hub
        self._directory = directory
        self._store = store
        self._broker = broker

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "quartchat_open_sockets", "Sockets open on this process", self._hub.subscriber_count
        )
        yield GaugeMetricFamily(
            "quartchat_active_rooms", "Rooms with a socket on this process", self._hub.room_count
        )
        yield GaugeMetricFamily(
            "quartchat_asyncio_tasks",
            "asyncio tasks alive in this process (an open socket holds two, Hypercorn's)",
            len(asyncio.all_tasks()),
        )
        yield CounterMetricFamily(
            "quartchat_frames_delivered",
            "Frames queued to this process's sockets (messages, presence, typing...)",
            self._hub.frames_queued,
        )
        yield CounterMetricFamily(
            "quartchat_directory_queries",
            "Database reads for handshakes whose user or room this process had not cached",
            self._directory.queries,
        )
        yield CounterMetricFamily(
            "quartchat_commits",
            "Transactions that stored messages (quartchat_messages_stored_total over this is "
            "the messages per commit; COMMIT_WINDOW raises it while the server is busy)",
            self._store.commits,
        )
        yield CounterMetricFamily(
            "quartchat_broker_frames_received",
            "Frames this process received from the broker: the traffic of its own rooms "
            "(its own echoes included) and instance-wide control frames",
            self._broker.frames_received,
        )


class Metrics:
    """Counters and gauges of one Chat; each app has its own registry."""

    def __init__(self, hub: Hub, directory: Directory, store: MessageStore, broker: Broker) -> None:
        self.registry = CollectorRegistry()
        # CPU, memory, open file descriptors, GC: what every Prometheus client exports.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(_ScrapeTimeCollector(hub, directory, store, broker))
        self.workers: WorkerMetrics | None = None
        self.messages_stored = Counter(
            "quartchat_messages_stored", "Messages stored by this process", registry=self.registry
        )
        self.errors = Counter(
            "quartchat_errors",
            "Error frames sent to sockets and error responses, by code",
            ["code"],
            registry=self.registry,
        )
        self.slow_closes = Counter(
            "quartchat_slow_consumer_closes",
            "Sockets closed with 4008 because their queue was full",
            registry=self.registry,
        )
        self.fanout_seconds = Histogram(
            "quartchat_fanout_seconds",
            "From a frame's broadcast to its write on a socket (first frame of each write)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def share_with_workers(self, folder: Path) -> None:
        """Answer sibling workers from `folder`, and add theirs up in every scrape."""
        self.workers = WorkerMetrics(folder, lambda: generate_latest(self.registry))

    async def exposition(self) -> bytes:
        """What a scrape reads: this process's metrics, or every worker's."""
        if self.workers is None:
            return generate_latest(self.registry)
        return generate_latest(Gathered(await self.workers.gather()))
