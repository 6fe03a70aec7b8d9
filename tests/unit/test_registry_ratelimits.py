"""Pull limits: fixed windows, whose counter a pull goes to, and the headers Docker Hub sends."""

from __future__ import annotations

from portside.registry.ratelimits import PullQuota, subject_for, window_start


def test_window_start_is_the_fixed_window_now_falls_in() -> None:
    assert window_start(0, 21600) == 0
    assert window_start(21599.9, 21600) == 0
    assert window_start(21600, 21600) == 21600
    assert window_start(1_700_000_123.5, 3600) == 1_700_000_123 - 1_700_000_123 % 3600


def test_signed_in_callers_count_by_account_and_anonymous_ones_by_address() -> None:
    assert subject_for("user:alice", "192.0.2.1") == "user:alice"
    assert subject_for("robot:acme+ci", "192.0.2.1") == "robot:acme+ci"
    assert subject_for("anonymous", "192.0.2.1") == "address:192.0.2.1"
    assert subject_for(None, None) == "address:unknown"


def test_quota_headers_use_docker_hubs_format() -> None:
    quota = PullQuota(limit=100, used=24, window_seconds=21600, reset_after=600, source="192.0.2.1")
    assert quota.headers() == {
        "RateLimit-Limit": "100;w=21600",
        "RateLimit-Remaining": "76;w=21600",
        "Docker-RateLimit-Source": "192.0.2.1",
    }
    assert not quota.exceeded


def test_the_pull_after_the_last_allowed_one_is_refused_with_retry_after() -> None:
    last = PullQuota(limit=3, used=3, window_seconds=3600, reset_after=10, source="user:bob")
    over = PullQuota(limit=3, used=4, window_seconds=3600, reset_after=10, source="user:bob")
    assert not last.exceeded and last.remaining == 0
    assert over.exceeded and over.remaining == 0
    assert over.retry_headers()["Retry-After"] == "10"


def test_retry_after_is_at_least_one_second() -> None:
    quota = PullQuota(limit=1, used=2, window_seconds=60, reset_after=0, source="x")
    assert quota.retry_headers()["Retry-After"] == "1"
