"""Reading what a server exposes about itself: Prometheus metrics and its JSON log lines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(base_url: str, **client: Any) -> dict[Sample, float]:
    """``GET /metrics`` parsed: (sample name, labels) -> value."""
    response = httpx.get(f"{base_url}/metrics", timeout=30.0, **client)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def log_lines(log_path: Path) -> list[dict[str, Any]]:
    """Every JSON line of a server's log (other lines, such as Granian's, are skipped)."""
    lines: list[dict[str, Any]] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def lines_for(log_path: Path, request_id: str) -> list[dict[str, Any]]:
    """The JSON log lines written for one request."""
    return [line for line in log_lines(log_path) if line.get("request_id") == request_id]


def wait_for_lines(log_path: Path, request_id: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The log lines of a request, once at least ``count`` are written (the line follows the response)."""
    deadline = time.monotonic() + timeout
    while True:
        found = lines_for(log_path, request_id)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
