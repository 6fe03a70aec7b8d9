"""Pure helpers of the lifecycle pages: size and duration fields, history rows, deleted tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.api.web import form_values as fields
from portside.api.web.manage_lifecycle import deleted_tags, history_rows
from portside.lifecycle.history import HistoryView, restorable_digests
from portside.metadata.tag_changes import TagAction, TagHistoryEntry
from portside.oci.errors import RegistryError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A, B, C = ("sha256:" + c * 64 for c in "abc")


@pytest.mark.parametrize(
    ("typed", "size"),
    [("1024", 1024), ("2 KiB", 2048), ("500 MB", 500_000_000), ("1.5GiB", 1610612736), ("10 gb", 10**10), ("", None)],
)
def test_sizes_are_read_with_units(typed: str, size: int | None) -> None:
    assert fields.byte_size({"limit": typed}, "limit", "The quota") == size


@pytest.mark.parametrize("typed", ["ten", "-5", "5 parsecs", "1e3", "99999999999 TiB"])
def test_bad_sizes_are_refused(typed: str) -> None:
    with pytest.raises(RegistryError, match="The quota"):
        fields.byte_size({"limit": typed}, "limit", "The quota")


def test_days_and_whole_numbers() -> None:
    assert fields.days({"d": "14"}, "d", "Delete after") == timedelta(days=14)
    assert fields.days({"d": ""}, "d", "Delete after") is None
    assert fields.whole_number({"n": "0"}, "n", "Keep") == 0
    for bad in ("-1", "1.5", "two"):
        with pytest.raises(RegistryError, match="whole number"):
            fields.whole_number({"n": bad}, "n", "Keep")
    with pytest.raises(RegistryError, match="at most"):
        fields.days({"d": "100000"}, "d", "Delete after")


def entry(number: int, tag: str, action: TagAction, old: str | None, new: str | None, age_days: int) -> TagHistoryEntry:
    return TagHistoryEntry(number, "acme/app", tag, action, old, new, "user:alice", NOW - timedelta(days=age_days))


def view(entries: list[TagHistoryEntry], window_days: int = 14) -> HistoryView:
    since = NOW - timedelta(days=window_days)
    return HistoryView(entries, since, restorable_digests(entries, since))


def test_rows_offer_each_earlier_digest_once_and_never_the_current_one() -> None:
    entries = [
        entry(3, "v1", "moved", B, C, 1),
        entry(2, "v1", "moved", A, B, 2),
        entry(1, "v1", "created", None, A, 30),  # outside the window
    ]
    rows = history_rows(view(entries))
    assert [row.restore_to for row in rows] == [[B], [A], []]


def test_deleted_tags_are_those_whose_newest_change_deleted_them_within_the_window() -> None:
    entries = [
        entry(5, "gone", "deleted", A, None, 1),
        entry(4, "back", "restored", None, B, 1),
        entry(3, "back", "deleted", B, None, 2),
        entry(2, "ancient", "deleted", C, None, 20),
        entry(1, "gone", "created", None, A, 3),
    ]
    found = deleted_tags(view(entries))
    assert [(item.tag, item.digest) for item in found] == [("gone", A)]
    rows = history_rows(view(entries))
    assert rows[0].restore_to == [A]  # the deleted tag may be restored to what it had
