"""Pure lifecycle logic: tag globs, the history window, quota arithmetic and size parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.cli_lifecycle import parse_size
from portside.lifecycle.history import history_actor, restorable_digests, window_start
from portside.lifecycle.immutability import guard_of, matching_rule, tag_matches, validate_pattern, validate_scope
from portside.lifecycle.quotas import QuotaInfo, exceeds, refusal
from portside.metadata.lifecycle_store import namespace_of
from portside.metadata.tag_changes import ImmutableRule, TagHistoryEntry, TagLocked, check_guard
from portside.oci.errors import ErrorKind, RegistryError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rule(rule_id: int, pattern: str, scope: str = "acme") -> ImmutableRule:
    return ImmutableRule(rule_id, "namespace", scope, pattern, "user:alice", NOW)


def entry(tag: str, old: str | None, new: str | None, age: timedelta) -> TagHistoryEntry:
    action = "created" if old is None else ("deleted" if new is None else "moved")
    return TagHistoryEntry(1, "acme/app", tag, action, old, new, "user:alice", NOW - age)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "tag", "expected"),
    [
        ("v*", "v1", True),
        ("v*", "v1.2.3", True),
        ("v*", "latest", False),
        ("v*", "V1", False),
        ("release-*", "release-2026", True),
        ("release-*", "release", False),
        ("v?", "v1", True),
        ("v?", "v10", False),
        ("v[0-9]*", "v9-rc", True),
        ("v[0-9]*", "vx", False),
        ("latest", "latest", True),
        ("*", "anything", True),
    ],
)
def test_tag_globs(pattern: str, tag: str, expected: bool) -> None:
    assert tag_matches(pattern, tag) is expected


@pytest.mark.parametrize("pattern", ["", "v/*", "v *", "x" * 129, "tag$"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        validate_pattern(pattern)


def test_the_lowest_numbered_matching_rule_is_named() -> None:
    rules = [rule(7, "v*"), rule(3, "v1*"), rule(5, "release-*")]
    found = matching_rule(rules, "v1.0")
    assert found is not None and found.id == 3
    assert matching_rule(rules, "latest") is None
    assert "immutable rule 3" in found.describe() and "'v1*'" in found.describe()


def test_a_guard_exists_only_when_rules_apply() -> None:
    assert guard_of([]) is None
    check_guard(None, "v1", "moved")
    guard = guard_of([rule(1, "v*")])
    assert guard is not None
    check_guard(guard, "latest", "moved")
    with pytest.raises(TagLocked) as locked:
        check_guard(guard, "v2", "deleted")
    assert "immutable rule 1" in str(locked.value) and "cannot be deleted" in str(locked.value)


def test_restorable_digests_are_those_inside_the_window() -> None:
    since = window_start(NOW, timedelta(days=14))
    assert since == NOW - timedelta(days=14)
    history = [
        entry("v1", None, "sha256:aa", timedelta(days=30)),  # outside: aa only from here
        entry("v1", "sha256:aa", "sha256:bb", timedelta(days=10)),  # inside: aa and bb
        entry("v1", "sha256:bb", "sha256:cc", timedelta(days=1)),
        entry("v1", "sha256:cc", None, timedelta(hours=1)),
    ]
    assert restorable_digests(history, since) == {"sha256:aa", "sha256:bb", "sha256:cc"}
    assert restorable_digests(history, window_start(NOW, timedelta(days=5))) == {"sha256:bb", "sha256:cc"}
    assert restorable_digests(history[:1], since) == set()
    # A change exactly at the window's start is still inside.
    assert restorable_digests([entry("v1", None, "sha256:dd", timedelta(days=14))], since) == {"sha256:dd"}


def test_anonymous_changes_have_no_actor() -> None:
    assert history_actor("anonymous") is None
    assert history_actor("user:alice") == "user:alice"


def test_quota_arithmetic() -> None:
    assert not exceeds(used=0, adding=100, limit=100)
    assert exceeds(used=1, adding=100, limit=100)
    assert not exceeds(used=500, adding=0, limit=100)  # adding nothing never exceeds, even over quota
    error = refusal("acme", needed=300, used=900, limit=1000)
    assert error.kind is ErrorKind.DENIED
    assert "needs 300 bytes" in error.message and "uses 900 of its 1000 bytes" in error.message
    assert QuotaInfo("acme", 1000, "namespace", 1200).available_bytes == 0
    assert QuotaInfo("acme", None, None, 1200).available_bytes is None


def test_namespace_is_the_first_path_component() -> None:
    assert namespace_of("acme/team/app") == "acme"
    assert namespace_of("alice") == "alice"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000", 1000), ("10K", 10240), ("5M", 5 * 1024**2), ("2GiB", 2 * 1024**3), ("1t", 1024**4), ("none", None)],
)
def test_sizes(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "ten", "1.5G", "-1"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_rule_scopes() -> None:
    assert validate_scope("namespace", "acme") == "acme"
    assert validate_scope("repository", "acme/team/app") == "acme/team/app"
    with pytest.raises(ValueError, match="one path component"):
        validate_scope("namespace", "acme/app")
    with pytest.raises(ValueError, match="scope"):
        validate_scope("organization", "acme")
    with pytest.raises(RegistryError):
        validate_scope("repository", "Acme/App")
