"""The ``Metrics`` service: every Prometheus metric Portside exports, behind typed methods.

Granian runs several worker processes, each answering some of the requests and some of the
scrapes. Counters therefore use prometheus-client's multiprocess mode: each worker writes its
values to memory-mapped files in one directory per server (``portside serve`` makes it under
the data dir and empties it at start), and a scrape of any worker sums the files of all of
them. Without that directory (an app built in a test process) the metrics live in memory.

Storage figures are not counters: they are read from the database at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# The environment variable prometheus-client reads to find the multiprocess directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latencies from sub-millisecond manifest reads to multi-minute layer uploads.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Label values of `record_gc_run` and `record_webhook_delivery` (kept few: every value is a series).
# Label sets of the request metrics whose children are kept (methods come from clients: bounded).
MAX_CACHED_LABEL_SETS = 1024
GC_OUTCOMES = frozenset({"success", "failure", "skipped"})
WEBHOOK_OUTCOMES = frozenset({"delivered", "retrying", "failed"})


@dataclass(frozen=True)
class StorageUsage:
    """What the metadata says is stored, read at scrape time."""

    blobs: int
    blob_bytes: int
    uploads_in_progress: int


class _StorageCollector(Collector):
    """Exposes one ``StorageUsage`` reading as gauges (built per scrape)."""

    def __init__(self, usage: StorageUsage) -> None:
        self.usage = usage

    def collect(self) -> list[GaugeMetricFamily]:
        """The three gauges."""
        return [
            GaugeMetricFamily("portside_storage_blobs", "Blobs stored (each digest once).", self.usage.blobs),
            GaugeMetricFamily("portside_storage_bytes", "Bytes of stored blobs.", self.usage.blob_bytes),
            GaugeMetricFamily(
                "portside_uploads_in_progress",
                "Open blob upload sessions that hold bytes.",
                self.usage.uploads_in_progress,
            ),
        ]


class Metrics:
    """Portside's metrics; one instance per app, reached as ``app.state.metrics``.

    Other features record their outcomes through the ``record_*`` methods: the garbage
    collector calls ``record_gc_run`` once per run, the webhook dispatcher calls
    ``record_webhook_delivery`` once per delivery attempt.
    """

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None:
            # prometheus-client picks its value store when first imported; `portside serve`
            # imports it before it sets the directory and forks the workers, so choose again
            # here, in the worker, before the first metric is made.
            os.environ[MULTIPROC_ENV] = str(multiprocess_dir)
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
            # Metrics of a multiprocess app are only ever read through the directory.
            self._own: CollectorRegistry | None = None
        else:
            self._own = CollectorRegistry()
        registry = self._own
        self.requests = Counter(
            "portside_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "portside_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.bytes_received = Counter(
            "portside_http_request_bytes", "Request body bytes received.", ["method", "route"], registry=registry
        )
        self.bytes_sent = Counter(
            "portside_http_response_bytes", "Response body bytes sent.", ["method", "route"], registry=registry
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any, Any, Any]] = {}
        self.in_progress = Gauge(
            "portside_http_requests_in_progress",
            "Requests being answered now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.gc_runs = Counter(
            "portside_gc_runs", "Garbage collection runs, by outcome.", ["outcome"], registry=registry
        )
        self.gc_freed = Counter(
            "portside_gc_freed_bytes", "Bytes of blobs garbage collection removed.", registry=registry
        )
        self.webhook_deliveries = Counter(
            "portside_webhook_deliveries",
            "Webhook delivery attempts, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "portside_rate_limited_pulls",
            "Pulls refused with 429 by the pull rate limit, by kind of caller.",
            ["caller"],
            registry=registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float, received: int, sent: int) -> None:
        """Count one answered request (``route`` is a template such as ``/v2/<name>/manifests/<reference>``)."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # Looking a labelled child up validates and locks each time: keep them per label set.
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
                self.bytes_received.labels(method, route),
                self.bytes_sent.labels(method, route),
            )
            if len(self._request_children) < MAX_CACHED_LABEL_SETS:
                self._request_children[key] = children
        requests, latency, bytes_received, bytes_sent = children
        requests.inc()
        latency.observe(seconds)
        if received:
            bytes_received.inc(received)
        if sent:
            bytes_sent.inc(sent)

    def record_gc_run(self, outcome: str, freed_bytes: int = 0) -> None:
        """Count one garbage collection run; ``outcome`` is one of ``GC_OUTCOMES``."""
        if outcome not in GC_OUTCOMES:
            raise ValueError(f"unknown GC outcome {outcome!r}; one of {sorted(GC_OUTCOMES)}")
        self.gc_runs.labels(outcome).inc()
        if freed_bytes > 0:
            self.gc_freed.inc(freed_bytes)

    def record_webhook_delivery(self, outcome: str) -> None:
        """Count one webhook delivery attempt; ``outcome`` is one of ``WEBHOOK_OUTCOMES``.

        ``delivered``: the endpoint answered 2xx; ``retrying``: it failed and will be tried
        again; ``failed``: it failed for the last time.
        """
        if outcome not in WEBHOOK_OUTCOMES:
            raise ValueError(f"unknown webhook outcome {outcome!r}; one of {sorted(WEBHOOK_OUTCOMES)}")
        self.webhook_deliveries.labels(outcome).inc()

    def record_rate_limited(self, authenticated: bool) -> None:
        """Count one pull refused by the rate limit."""
        self.rate_limited.labels("user" if authenticated else "anonymous").inc()

    def process_exited(self, pid: int) -> None:
        """Drop a finished worker's live gauges (its counters still count)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(pid, str(self.multiprocess_dir))  # type: ignore[no-untyped-call]

    def render(self, usage: StorageUsage | None) -> tuple[bytes, str]:
        """The exposition text of every worker's metrics plus ``usage``, and its content type."""
        registry = CollectorRegistry()
        if self.multiprocess_dir is not None:
            multiprocess.MultiProcessCollector(registry, str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        else:
            assert self._own is not None
            registry.register(_OwnMetrics(self._own))
        if usage is not None:
            registry.register(_StorageCollector(usage))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _OwnMetrics(Collector):
    """The in-memory metrics of a single-process app, inside a scrape's registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        """Everything the source registry holds."""
        return self.source.collect()


def prepare_multiprocess_dir(path: Path) -> Path:
    """Make ``path`` an empty directory: files of a previous run would add to this run's counters."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path
