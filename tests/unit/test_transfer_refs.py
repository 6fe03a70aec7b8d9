"""Choosing an image of an index and reading REPOSITORY[:TAG|@DIGEST] (pure)."""

from __future__ import annotations

import pytest

from portside.cli_ops import split_reference
from portside.oci.digest import parse_digest
from portside.oci.errors import RegistryError
from portside.oci.manifest import Descriptor
from portside.transfer.platforms import choose_platform, platform_text

CHILD_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def child(n: int, platform: dict[str, str]) -> Descriptor:
    return Descriptor(CHILD_MEDIA_TYPE, parse_digest("sha256:" + str(n) * 64), 100, platform=platform)


CHILDREN = (
    child(1, {"os": "linux", "architecture": "amd64"}),
    child(2, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    child(3, {"os": "linux", "architecture": "arm", "variant": "v7"}),
)


@pytest.mark.parametrize(
    ("wanted", "index"),
    [("linux/amd64", 0), ("linux/arm64", 1), ("linux/arm64/v8", 1), ("linux/arm/v7", 2)],
)
def test_choose_platform(wanted: str, index: int) -> None:
    assert choose_platform(CHILDREN, wanted) is CHILDREN[index]


def test_a_missing_platform_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"no image for windows/amd64 \(it has: linux/amd64, linux/arm64/v8"):
        choose_platform(CHILDREN, "windows/amd64")


def test_platform_text_of_a_descriptor_without_one() -> None:
    assert platform_text(None) == "unknown"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme/app", ("acme/app", "latest")),
        ("acme/app:v1", ("acme/app", "v1")),
        ("acme/app@sha256:" + "a" * 64, ("acme/app", "sha256:" + "a" * 64)),
        ("app", ("app", "latest")),
    ],
)
def test_split_reference(text: str, expected: tuple[str, str]) -> None:
    assert split_reference(text, "latest") == expected


def test_split_reference_without_default_and_with_a_bad_name() -> None:
    assert split_reference("acme/app", None) == ("acme/app", None)
    with pytest.raises(RegistryError):
        split_reference("Acme/App:v1", None)
