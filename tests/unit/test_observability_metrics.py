"""The Metrics service in one process, and route labels that stay bounded."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount, Route

from portside.observability.metrics import Metrics, StorageUsage
from portside.observability.middleware import route_template

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(metrics: Metrics, usage: StorageUsage | None = None) -> Samples:
    body, content_type = metrics.render(usage)
    assert content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_requests_are_counted_by_method_route_and_status_with_bytes_and_latency() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/v2/<name>/blobs/<digest>", 200, 0.003, 0, 1000)
    metrics.observe_request("GET", "/v2/<name>/blobs/<digest>", 200, 0.2, 0, 500)
    metrics.observe_request("PUT", "/v2/<name>/blobs/uploads/<uuid>", 201, 0.01, 4096, 0)
    samples = _samples(metrics)
    blob = {("method", "GET"), ("route", "/v2/<name>/blobs/<digest>")}
    assert samples[("portside_http_requests_total", frozenset({*blob, ("status", "200")}))] == 2
    assert samples[("portside_http_response_bytes_total", frozenset(blob))] == 1500
    assert samples[("portside_http_request_duration_seconds_count", frozenset(blob))] == 2
    assert samples[("portside_http_request_duration_seconds_bucket", frozenset({*blob, ("le", "0.005")}))] == 1
    upload = frozenset({("method", "PUT"), ("route", "/v2/<name>/blobs/uploads/<uuid>")})
    assert samples[("portside_http_request_bytes_total", upload)] == 4096


def test_gc_and_webhook_outcomes_are_counted() -> None:
    metrics = Metrics()
    metrics.record_gc_run("success", freed_bytes=2048)
    metrics.record_gc_run("failure")
    metrics.record_webhook_delivery("delivered")
    metrics.record_webhook_delivery("retrying")
    metrics.record_webhook_delivery("delivered")
    samples = _samples(metrics)
    assert samples[("portside_gc_runs_total", frozenset({("outcome", "success")}))] == 1
    assert samples[("portside_gc_runs_total", frozenset({("outcome", "failure")}))] == 1
    assert samples[("portside_gc_freed_bytes_total", frozenset())] == 2048
    assert samples[("portside_webhook_deliveries_total", frozenset({("outcome", "delivered")}))] == 2


def test_unknown_outcomes_are_refused_so_label_values_stay_few() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="GC outcome"):
        metrics.record_gc_run("exploded")
    with pytest.raises(ValueError, match="webhook outcome"):
        metrics.record_webhook_delivery("HTTP 502 from https://hooks.example/x")


def test_storage_figures_are_gauges_read_at_scrape_time() -> None:
    samples = _samples(Metrics(), StorageUsage(blobs=3, blob_bytes=12345, uploads_in_progress=2))
    assert samples[("portside_storage_blobs", frozenset())] == 3
    assert samples[("portside_storage_bytes", frozenset())] == 12345
    assert samples[("portside_uploads_in_progress", frozenset())] == 2
    assert ("portside_storage_blobs", frozenset()) not in _samples(Metrics(), None)


def test_two_apps_in_one_process_keep_separate_metrics() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("GET", "/v2/", 200, 0.001, 0, 2)
    labels = frozenset({("method", "GET"), ("route", "/v2/"), ("status", "200")})
    assert _samples(first)[("portside_http_requests_total", labels)] == 1
    assert ("portside_http_requests_total", labels) not in _samples(second)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v2/", "/v2/"),
        ("/v2", "/v2/"),
        ("/v2/library/alpine/manifests/3.20", "/v2/<name>/manifests/<reference>"),
        ("/v2/a/b/c/blobs/uploads/", "/v2/<name>/blobs/uploads/"),
        ("/v2/a/blobs/uploads/0b8f", "/v2/<name>/blobs/uploads/<uuid>"),
        ("/v2/a/blobs/sha256:abc", "/v2/<name>/blobs/<digest>"),
        ("/v2/a/nonsense", "/v2/<unknown>"),
    ],
)
def test_v2_routes_are_labelled_by_template(path: str, template: str) -> None:
    assert route_template({"path": path}) == template


def test_other_routes_use_the_matched_route_or_mount() -> None:
    async def endpoint() -> None:
        return None

    assert route_template({"path": "/token", "route": Route("/token", endpoint)}) == "/token"
    assert route_template({"path": "/api/v1/users/x", "route": Mount("/api/v1", routes=[])}) == "/api/v1/*"
    assert route_template({"path": "/favicon.ico"}) == "<unmatched>"
