"""Marking for online garbage collection: the closure, and what a repository's plan may remove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portside.lifecycle.gc import live_manifests, parents_first, plan_repository
from portside.metadata.gc_store import ManifestFacts, RepositorySnapshot

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=2)
CUTOFF = NOW - timedelta(hours=1)


def _snapshot(**manifests: tuple[datetime, str | None]) -> RepositorySnapshot:
    snap = RepositorySnapshot(1, "acme/app")
    for digest, (created, subject) in manifests.items():
        snap.manifests[digest] = ManifestFacts(digest, created, subject)
    return snap


def test_closure_follows_index_children_and_referrers_of_live_manifests() -> None:
    children = {"index": {"amd64", "arm64"}}
    referrers = {"amd64": {"signature"}, "signature": {"signature-of-signature"}, "orphan": {"sbom"}}
    live = live_manifests({"index"}, children, referrers)
    assert live == {"index", "amd64", "arm64", "signature", "signature-of-signature"}


def test_closure_of_nothing_is_nothing() -> None:
    assert live_manifests(set(), {"a": {"b"}}, {"a": {"c"}}) == set()


def test_a_referrer_does_not_keep_its_subject() -> None:
    assert live_manifests({"signature"}, {}, {"image": {"signature"}}) == {"signature"}


def test_plan_keeps_tagged_history_young_and_retained_manifests() -> None:
    snap = _snapshot(
        tagged=(OLD, None),
        in_history=(OLD, None),
        young=(NOW, None),
        retained=(OLD, None),
        garbage=(OLD, None),
    )
    snap.tagged = {"tagged"}
    snap.history = {"in_history", "gone-from-repository"}
    plan = plan_repository(snap, {"retained"}, CUTOFF)
    assert plan.manifests == ["garbage"]


def test_plan_removes_untagged_index_before_its_children_and_keeps_signed_images_signatures() -> None:
    snap = _snapshot(
        index=(OLD, None),
        child=(OLD, None),
        image=(OLD, None),
        signature=(OLD, "image"),
        stray_signature=(OLD, "index"),
    )
    snap.children = {"index": {"child"}}
    snap.tagged = {"image"}
    plan = plan_repository(snap, set(), CUTOFF)
    assert plan.manifests.index("index") < plan.manifests.index("child")
    assert set(plan.manifests) == {"index", "child", "stray_signature"}


def test_plan_removes_only_old_links_no_surviving_manifest_needs() -> None:
    snap = _snapshot(kept=(OLD, None), garbage=(OLD, None))
    snap.tagged = {"kept"}
    snap.blob_refs = {"kept": {"shared", "config"}, "garbage": {"shared", "unique"}}
    snap.links = {"shared": OLD, "config": OLD, "unique": OLD, "uploaded-just-now": NOW, "orphan": OLD}
    plan = plan_repository(snap, set(), CUTOFF)
    assert plan.links == ["orphan", "unique"]


def test_parents_first_keeps_every_digest_once() -> None:
    order = parents_first(["c", "b", "a"], {"a": {"b"}, "b": {"c"}})
    assert order == ["a", "b", "c"]
