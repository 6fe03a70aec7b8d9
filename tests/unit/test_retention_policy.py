"""Retention policy evaluation: which tags and untagged manifests a policy selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.lifecycle.retention_policy import (
    ManifestInfo,
    Policy,
    RepositoryFacts,
    TagFacts,
    evaluate_tags,
    select_removals,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _facts(*tags: tuple[str, str, int], manifests: dict[str, ManifestInfo] | None = None) -> RepositoryFacts:
    """Tags as (name, digest, age in days); a manifest per digest unless given."""
    tag_facts = [TagFacts(name, digest, NOW - age * DAY) for name, digest, age in tags]
    known = manifests or {t.digest: ManifestInfo(t.digest, t.updated_at) for t in tag_facts}
    return RepositoryFacts(tags=tag_facts, manifests=known)


def _never(_: str) -> bool:
    return False


def test_keep_last_deletes_all_but_the_newest_matching_tags() -> None:
    facts = _facts(("b1", "d1", 5), ("b2", "d2", 4), ("b3", "d3", 3), ("b4", "d4", 2), ("latest", "d4", 9))
    delete, keep = evaluate_tags(Policy(tag_pattern="b*", keep_last=2), facts, NOW)
    assert delete == {"b1", "b2"}
    assert keep == {"b3", "b4"}


def test_older_than_deletes_only_old_tags() -> None:
    facts = _facts(("old", "d1", 40), ("new", "d2", 1))
    delete, _ = evaluate_tags(Policy(delete_older_than=30 * DAY), facts, NOW)
    assert delete == {"old"}


def test_keep_last_is_a_floor_under_older_than() -> None:
    facts = _facts(("a", "d1", 50), ("b", "d2", 40), ("c", "d3", 35))
    delete, _ = evaluate_tags(Policy(keep_last=1, delete_older_than=30 * DAY), facts, NOW)
    assert delete == {"a", "b"}


def test_recently_pulled_tags_are_kept() -> None:
    facts = _facts(("a", "d1", 50), ("b", "d2", 40))
    facts.last_pulled = {"d1": NOW - timedelta(hours=2)}
    delete, keep = evaluate_tags(Policy(delete_older_than=DAY, keep_pulled_within=7 * DAY), facts, NOW)
    assert delete == {"b"} and "a" in keep


def test_immutable_tags_are_never_selected() -> None:
    facts = _facts(("v1.0", "d1", 50), ("build-1", "d2", 40))
    selection = select_removals([Policy(delete_older_than=DAY)], facts, NOW, lambda tag: tag.startswith("v"))
    assert selection.tags == ["build-1"]


def test_a_tag_kept_by_one_policy_is_not_deleted_by_another() -> None:
    facts = _facts(("v1", "d1", 50), ("v2", "d2", 40), ("x", "d3", 40))
    selection = select_removals(
        [Policy(tag_pattern="v*", keep_last=2), Policy(delete_older_than=DAY)], facts, NOW, _never
    )
    assert selection.tags == ["x"]


def test_referrers_of_kept_manifests_stay_including_cosign_style_tags() -> None:
    image, sig = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    other = "sha256:" + "c" * 64
    manifests = {
        image: ManifestInfo(image, NOW - 50 * DAY),
        sig: ManifestInfo(sig, NOW - 50 * DAY, subject=image),
        other: ManifestInfo(other, NOW - 50 * DAY),
    }
    facts = _facts(
        ("release", image, 0), ("sha256-" + "a" * 64 + ".sig", other, 50), ("sig-tag", sig, 50), manifests=manifests
    )
    selection = select_removals([Policy(tag_pattern="s*", delete_older_than=DAY)], facts, NOW, _never)
    assert selection.tags == []
    assert {image, sig, other} <= selection.kept_manifests


def test_untagged_manifests_go_after_their_duration_but_children_of_kept_indexes_stay() -> None:
    index, child, stray, fresh = "index", "child", "stray", "fresh"
    manifests = {
        index: ManifestInfo(index, NOW - 50 * DAY, children=frozenset({child})),
        child: ManifestInfo(child, NOW - 50 * DAY),
        stray: ManifestInfo(stray, NOW - 50 * DAY),
        fresh: ManifestInfo(fresh, NOW - timedelta(hours=1)),
    }
    facts = _facts(("latest", index, 1), manifests=manifests)
    selection = select_removals([Policy(untagged_after=7 * DAY)], facts, NOW, _never)
    assert selection.manifests == [stray]
    assert fresh in selection.kept_manifests and child in selection.kept_manifests


def test_untagged_index_goes_before_its_children() -> None:
    manifests = {
        "index": ManifestInfo("index", NOW - 50 * DAY, children=frozenset({"child"})),
        "child": ManifestInfo("child", NOW - 50 * DAY),
    }
    selection = select_removals([Policy(untagged_after=DAY)], _facts(manifests=manifests), NOW, _never)
    assert selection.manifests == ["index", "child"]


def test_a_policy_must_say_what_to_remove() -> None:
    with pytest.raises(ValueError, match="needs keep_last"):
        Policy(keep_pulled_within=DAY)
    with pytest.raises(ValueError, match="keep_last"):
        Policy(keep_last=-1)


def test_a_policy_keeps_and_ages_within_bounds() -> None:
    assert Policy(keep_last=1_000_000, untagged_after=36_500 * DAY).keep_last == 1_000_000
    with pytest.raises(ValueError, match="keep_last must be 0 to 1,000,000"):
        Policy(keep_last=1_000_001)
    for name in ("delete_older_than", "untagged_after", "keep_pulled_within"):
        with pytest.raises(ValueError, match=f"{name} must be 0 to 36,500 days"):
            Policy(keep_last=1, **{name: 36_501 * DAY})
        with pytest.raises(ValueError, match=name):
            Policy(keep_last=1, **{name: -DAY})
