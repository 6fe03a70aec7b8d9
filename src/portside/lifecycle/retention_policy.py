"""Retention policies as pure functions: which tags and untagged manifests a policy lets go.

A policy applies to one repository or to every repository of a namespace. Among the tags
matching its pattern it may keep the newest N (``keep_last``) and delete those not pushed
for a while (``delete_older_than``); it may delete untagged manifests after a while
(``untagged_after``); and it keeps anything pulled recently (``keep_pulled_within``).

Whatever the policy says, these are never selected: tags an immutable rule protects,
referrers of a kept manifest (signatures, SBOMs, attestations, also cosign's
``sha256-<hex>.sig`` style tags) and children of a kept index. Where several policies cover
a repository, a tag or manifest goes only if one selects it and none keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from portside.lifecycle.gc import live_manifests, parents_first
from portside.lifecycle.immutability import tag_matches
from portside.metadata.retention_records import ManifestInfo, Policy, RepositoryFacts, TagFacts

__all__ = ["ManifestInfo", "Policy", "RepositoryFacts", "Selection", "TagFacts", "evaluate_tags", "select_removals"]

# Cosign and similar tools attach signatures, attestations and SBOMs as tags named after the
# subject's digest: "sha256-<hex>.sig", ".att", ".sbom".
_DIGEST_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})(\.[a-z]+)?$")


@dataclass(frozen=True)
class Selection:
    """What the policies of a repository remove and what they keep (by tag name and manifest digest)."""

    tags: list[str]
    manifests: list[str]
    kept_manifests: frozenset[str]


def _pulled_within(facts: RepositoryFacts, digest: str, window: timedelta | None, now: datetime) -> bool:
    if window is None:
        return False
    pulled = facts.last_pulled.get(digest)
    return pulled is not None and pulled >= now - window


def _newest_first(tags: Iterable[TagFacts]) -> list[TagFacts]:
    return sorted(tags, key=lambda t: (t.updated_at, t.name), reverse=True)


def evaluate_tags(policy: Policy, facts: RepositoryFacts, now: datetime) -> tuple[set[str], set[str]]:
    """(tags the policy would delete, tags it explicitly keeps), before protections are applied."""
    matching = _newest_first(t for t in facts.tags if tag_matches(policy.tag_pattern, t.name))
    keep: set[str] = set()
    delete: set[str] = set()
    if policy.keep_last is not None:
        keep |= {t.name for t in matching[: policy.keep_last]}
    for tag in matching:
        if _pulled_within(facts, tag.digest, policy.keep_pulled_within, now):
            keep.add(tag.name)
    for tag in matching:
        if tag.name in keep:
            continue
        if policy.delete_older_than is not None:
            if tag.updated_at < now - policy.delete_older_than:
                delete.add(tag.name)
        elif policy.keep_last is not None:
            delete.add(tag.name)
    return delete, keep


def _referrers(manifests: Mapping[str, ManifestInfo]) -> dict[str, set[str]]:
    referrers: dict[str, set[str]] = {}
    for info in manifests.values():
        if info.subject is not None:
            referrers.setdefault(info.subject, set()).add(info.digest)
    return referrers


def _subject_of_tag(name: str) -> str | None:
    match = _DIGEST_TAG.match(name)
    return None if match is None else f"{match.group(1)}:{match.group(2)}"


def select_removals(
    policies: Iterable[Policy],
    facts: RepositoryFacts,
    now: datetime,
    is_immutable: Callable[[str], bool],
) -> Selection:
    """Combine every policy covering one repository into what goes and what is kept."""
    policies = list(policies)
    delete_tags: set[str] = set()
    keep_tags: set[str] = set()
    for policy in policies:
        delete, keep = evaluate_tags(policy, facts, now)
        delete_tags |= delete
        keep_tags |= keep
    delete_tags -= keep_tags
    delete_tags = {name for name in delete_tags if not is_immutable(name)}

    children = {digest: set(info.children) for digest, info in facts.manifests.items()}
    referrers = _referrers(facts.manifests)
    by_name = {t.name: t for t in facts.tags}
    # Manifests that stay tagged, or that a policy keeps because they were pulled, are kept
    # with their children and referrers.
    roots = {t.digest for t in facts.tags if t.name not in delete_tags}
    for policy in policies:
        roots |= {d for d in facts.manifests if _pulled_within(facts, d, policy.keep_pulled_within, now)}
    kept = live_manifests(roots & facts.manifests.keys(), children, referrers)
    # A tag on a referrer of a kept manifest (by subject, or named after it) stays too.
    rescued = {name for name in delete_tags if by_name[name].digest in kept or (_subject_of_tag(name) or "") in kept}
    if rescued:
        delete_tags -= rescued
        roots |= {by_name[name].digest for name in rescued}
        kept = live_manifests(roots & facts.manifests.keys(), children, referrers)

    still_tagged = {t.digest for t in facts.tags if t.name not in delete_tags}
    delete_manifests: set[str] = set()
    for policy in policies:
        if policy.untagged_after is None:
            continue
        keep_young = now - policy.untagged_after
        for digest, info in facts.manifests.items():
            if digest in kept or digest in still_tagged:
                continue
            # Only manifests that were untagged before this run; those whose tags this run
            # removes wait for the next run, so a dry run and a run agree on what goes.
            if any(t.digest == digest for t in facts.tags):
                continue
            if info.created_at < keep_young:
                delete_manifests.add(digest)
    young: set[str] = set()
    for policy in policies:
        if policy.untagged_after is not None:
            young |= {d for d, info in facts.manifests.items() if info.created_at >= now - policy.untagged_after}
    return Selection(
        tags=sorted(delete_tags),
        manifests=parents_first(sorted(delete_manifests - young), children),
        kept_manifests=frozenset(kept | (young - still_tagged - delete_manifests)),
    )
