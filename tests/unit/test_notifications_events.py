"""The webhook envelope, signature, filters and backoff (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from portside.notifications.events import (
    EventAction,
    RegistryEvent,
    RequestInfo,
    RetentionScan,
    Source,
    backoff_seconds,
    envelope,
    event_json,
    parse_event_filter,
    signature,
    subscribed,
    verify_signature,
)

WHEN = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
SOURCE = Source("node-1:5000", "instance-1")


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"events":[]}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"
    assert verify_signature("s3cret", body, f"sha256={expected}")
    assert not verify_signature("other", body, f"sha256={expected}")
    assert not verify_signature("s3cret", body + b" ", f"sha256={expected}")
    assert not verify_signature("s3cret", body, None)


def test_event_filter_accepts_known_types_and_groups_and_defaults_to_all() -> None:
    assert parse_event_filter("push, pull") == ("push", "pull")
    assert parse_event_filter([]) == ("*",)
    assert parse_event_filter(["tag", "tag"]) == ("tag",)
    with pytest.raises(ValueError, match="pushed"):
        parse_event_filter(["pushed"])


@pytest.mark.parametrize(
    ("events", "action", "wanted"),
    [
        (("*",), EventAction.PULL, True),
        (("push",), EventAction.PUSH, True),
        (("push",), EventAction.TAG_CREATED, False),
        (("tag",), EventAction.TAG_MOVED, True),
        (("tag",), EventAction.DELETE, False),
        (("retention_scan",), EventAction.RETENTION_SCAN, True),
    ],
)
def test_subscriptions(events: tuple[str, ...], action: EventAction, wanted: bool) -> None:
    assert subscribed(events, action) is wanted


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_seconds(n, 5, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_event_has_distributions_fields() -> None:
    event = RegistryEvent(
        action=EventAction.PUSH,
        repository="acme/app",
        digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=321,
        tag="v1",
        actor="alice",
        request=RequestInfo("req-1", "10.0.0.1", "registry.example", "PUT", "docker/27"),
        url="https://registry.example/v2/acme/app/manifests/sha256:" + "a" * 64,
        id="event-1",
    )
    body = json.loads(envelope([event_json(event, WHEN, SOURCE)]))
    assert body == {
        "events": [
            {
                "id": "event-1",
                "timestamp": "2026-11-28T08:00:00Z",
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "size": 321,
                    "digest": "sha256:" + "a" * 64,
                    "length": 321,
                    "repository": "acme/app",
                    "url": "https://registry.example/v2/acme/app/manifests/sha256:" + "a" * 64,
                    "tag": "v1",
                },
                "request": {
                    "id": "req-1",
                    "addr": "10.0.0.1",
                    "host": "registry.example",
                    "method": "PUT",
                    "useragent": "docker/27",
                },
                "actor": {"name": "alice"},
                "source": {"addr": "node-1:5000", "instanceID": "instance-1"},
            }
        ]
    }
    assert event.namespace == "acme"


def test_retention_scan_event_carries_its_findings() -> None:
    event = RegistryEvent(
        action=EventAction.RETENTION_SCAN,
        repository="acme/app",
        retention=RetentionScan(policy="keep-last-5", candidates=("sha256:1",), removed=(), dry_run=True),
    )
    body = event_json(event, WHEN, SOURCE)
    assert body["action"] == "retention_scan"
    assert body["retention"] == {"policy": "keep-last-5", "candidates": ["sha256:1"], "removed": [], "dryRun": True}
    assert body["request"] == {} and "url" not in body["target"]
