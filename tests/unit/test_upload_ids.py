"""Signed upload ids: made for one repository, checked with the key that made them."""

from __future__ import annotations

import time

from portside.registry.upload_ids import SESSION_ID, UploadIds, new_key


def test_an_id_is_checked_for_its_repository_and_tells_when_it_was_made() -> None:
    ids = UploadIds(new_key())
    upload_id = ids.new("team/app", now=1_700_000_000.7)
    assert SESSION_ID.match(upload_id) and len(upload_id) == 56
    assert ids.created(upload_id, "team/app") == 1_700_000_000
    assert ids.created(upload_id, "team/other") is None
    assert ids.new("team/app") != ids.new("team/app")  # a fresh nonce each time
    assert abs((ids.created(ids.new("a"), "a") or 0) - time.time()) < 2


def test_any_change_or_another_key_fails_the_check() -> None:
    key = new_key()
    ids = UploadIds(key)
    upload_id = ids.new("repo")
    for position in (0, 31, 32, 39, 40, 55):
        flipped = "0" if upload_id[position] != "0" else "1"
        assert ids.created(upload_id[:position] + flipped + upload_id[position + 1 :], "repo") is None
    assert UploadIds(new_key()).created(upload_id, "repo") is None
    assert UploadIds(key).created(upload_id, "repo") is not None


def test_unsigned_and_malformed_ids_are_not_signed_ones() -> None:
    ids = UploadIds(new_key())
    assert SESSION_ID.match("f" * 32)  # a session with a row, from before ids were signed
    assert ids.created("f" * 32, "repo") is None
    for malformed in ("", "F" * 56, "g" * 56, "a" * 55, "a" * 57, "../" + "a" * 53):
        assert ids.created(malformed, "repo") is None
        assert not SESSION_ID.match(malformed)
