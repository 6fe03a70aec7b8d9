"""Parsing and structural validation of manifests (OCI image-spec manifest.md / image-index.md, Docker schema 2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci import media_types as mt
from portside.oci.digest import digest_of
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.manifest import Descriptor, ParsedManifest, parse_descriptor, parse_manifest

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SBOM = "application/vnd.example.sbom.v1"
LINUX_AMD64 = {"architecture": "amd64", "os": "linux"}


def descriptor(media_type: str, content: bytes = b"content", **extra: Any) -> dict[str, Any]:
    """A descriptor of ``content`` as JSON."""
    return {"mediaType": media_type, "digest": str(digest_of(content)), "size": len(content), **extra}


CONFIG = descriptor(OCI_CONFIG, b'{"architecture":"amd64"}')
LAYER_A = descriptor(OCI_LAYER, b"layer a")
LAYER_B = descriptor(OCI_LAYER, b"layer b")
EMPTY_CONFIG = {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_JSON_DIGEST, "size": 2}


def oci_manifest(**fields: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": CONFIG, "layers": [LAYER_A, LAYER_B], **fields}


def oci_index(**fields: Any) -> dict[str, Any]:
    child = descriptor(mt.OCI_MANIFEST, b"child manifest", platform=LINUX_AMD64)
    return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [child], **fields}


def docker_manifest(**fields: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, b"docker config"),
        "layers": [descriptor(DOCKER_LAYER, b"docker layer")],
        **fields,
    }


def docker_manifest_list(**fields: Any) -> dict[str, Any]:
    child = descriptor(mt.DOCKER_MANIFEST, b"docker child", platform=LINUX_AMD64)
    return {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": [child], **fields}


def parse(document: Any, content_type: str | None) -> ParsedManifest:
    return parse_manifest(json.dumps(document).encode(), content_type)


def assert_rejected(
    data: bytes | Any, content_type: str | None, kind: ErrorKind = ErrorKind.MANIFEST_INVALID
) -> RegistryError:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(RegistryError) as info:
        parse_manifest(raw, content_type)
    assert info.value.kind is kind
    return info.value


# --- the four manifest kinds -------------------------------------------------------------


def test_oci_image_manifest_yields_its_config_and_layers_in_order() -> None:
    parsed = parse(oci_manifest(annotations={"org.opencontainers.image.title": "demo"}), mt.OCI_MANIFEST)
    assert parsed.media_type == mt.OCI_MANIFEST
    assert not parsed.is_index
    assert parsed.config is not None
    assert str(parsed.config.digest) == CONFIG["digest"]
    assert parsed.config.size == CONFIG["size"]
    assert parsed.config.media_type == OCI_CONFIG
    assert [str(layer.digest) for layer in parsed.layers] == [LAYER_A["digest"], LAYER_B["digest"]]
    assert parsed.children == ()
    assert parsed.subject is None
    assert parsed.artifact_type is None
    assert parsed.annotations == {"org.opencontainers.image.title": "demo"}


def test_oci_index_yields_its_child_manifests_with_platforms() -> None:
    parsed = parse(oci_index(), mt.OCI_INDEX)
    assert parsed.media_type == mt.OCI_INDEX
    assert parsed.is_index
    assert parsed.config is None
    assert parsed.layers == ()
    (child,) = parsed.children
    assert child.media_type == mt.OCI_MANIFEST
    assert child.platform == LINUX_AMD64


def test_empty_oci_index_is_valid() -> None:
    assert parse(oci_index(manifests=[]), mt.OCI_INDEX).children == ()


def test_docker_schema2_manifest_is_an_image_manifest() -> None:
    parsed = parse(docker_manifest(), mt.DOCKER_MANIFEST)
    assert parsed.media_type == mt.DOCKER_MANIFEST
    assert not parsed.is_index
    assert parsed.config is not None
    assert parsed.config.media_type == DOCKER_CONFIG
    assert [layer.media_type for layer in parsed.layers] == [DOCKER_LAYER]


def test_docker_manifest_list_is_an_index() -> None:
    parsed = parse(docker_manifest_list(), mt.DOCKER_MANIFEST_LIST)
    assert parsed.media_type == mt.DOCKER_MANIFEST_LIST
    assert parsed.is_index
    assert [child.media_type for child in parsed.children] == [mt.DOCKER_MANIFEST]


def test_manifest_with_empty_layers_list_is_valid() -> None:
    assert parse(oci_manifest(layers=[]), mt.OCI_MANIFEST).layers == ()


def test_manifest_without_layers_field_parses_as_having_no_layers() -> None:
    # Behaviour as written; image-manifest-schema.json lists "layers" as required, so this may change.
    document = oci_manifest()
    del document["layers"]
    assert parse(document, mt.OCI_MANIFEST).layers == ()


# --- artifacts, subject and the referrers artifactType -----------------------------------


def test_artifact_manifest_with_artifact_type_and_subject() -> None:
    subject = descriptor(mt.OCI_MANIFEST, b"the image this is about")
    document = oci_manifest(
        artifactType=SBOM,
        config=EMPTY_CONFIG,
        layers=[descriptor("application/spdx+json", b"{}sbom")],
        subject=subject,
        annotations={"org.example.sbom.format": "spdx"},
    )
    parsed = parse(document, mt.OCI_MANIFEST)
    assert parsed.artifact_type == SBOM
    assert parsed.referrer_artifact_type == SBOM
    assert parsed.subject is not None
    assert str(parsed.subject.digest) == subject["digest"]
    assert parsed.subject.size == subject["size"]
    assert parsed.config is not None
    assert str(parsed.config.digest) == mt.EMPTY_JSON_DIGEST


def test_referrer_artifact_type_falls_back_to_the_config_media_type() -> None:
    parsed = parse(oci_manifest(config=descriptor("application/vnd.example.signature.config.v1+json", b"c")), None)
    assert parsed.artifact_type is None
    assert parsed.referrer_artifact_type == "application/vnd.example.signature.config.v1+json"


def test_index_with_artifact_type_and_subject_reports_that_artifact_type() -> None:
    subject = descriptor(mt.OCI_INDEX, b"subject index")
    parsed = parse(oci_index(artifactType=SBOM, subject=subject), mt.OCI_INDEX)
    assert parsed.subject is not None
    assert parsed.referrer_artifact_type == SBOM


def test_index_without_artifact_type_reports_no_referrer_artifact_type() -> None:
    # distribution-spec: "If the artifactType is empty or missing in an index, the artifactType MUST be omitted."
    assert parse(oci_index(), mt.OCI_INDEX).referrer_artifact_type is None


def test_null_subject_means_no_subject() -> None:
    assert parse(oci_manifest(subject=None), mt.OCI_MANIFEST).subject is None


@pytest.mark.parametrize("subject", [{}, "sha256:abc", [1], descriptor(mt.OCI_MANIFEST, b"x", size=-1)])
def test_malformed_subject_is_invalid(subject: Any) -> None:
    error = assert_rejected(oci_manifest(subject=subject), mt.OCI_MANIFEST)
    assert error.message.startswith("subject")


# --- which media type: Content-Type and mediaType -----------------------------------------


def test_media_type_comes_from_content_type_when_the_document_has_none() -> None:
    document = oci_manifest()
    del document["mediaType"]
    assert parse(document, mt.OCI_MANIFEST).media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/octet-stream"])
def test_media_type_comes_from_the_document_when_content_type_says_nothing(content_type: str | None) -> None:
    assert parse(oci_index(), content_type).media_type == mt.OCI_INDEX
    assert parse(docker_manifest(), content_type).media_type == mt.DOCKER_MANIFEST


@pytest.mark.parametrize(
    "content_type",
    [f"{mt.OCI_MANIFEST}; charset=utf-8", "Application/VND.OCI.Image.Manifest.v1+json", f"  {mt.OCI_MANIFEST}  "],
)
def test_content_type_parameters_case_and_spaces_are_ignored(content_type: str) -> None:
    assert parse(oci_manifest(), content_type).media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (oci_manifest(), mt.DOCKER_MANIFEST),
        (docker_manifest(), mt.OCI_MANIFEST),
        (oci_index(), mt.DOCKER_MANIFEST_LIST),
        (oci_manifest(), mt.OCI_INDEX),
        (oci_index(), mt.OCI_MANIFEST),
    ],
)
def test_content_type_disagreeing_with_media_type_is_invalid(document: dict[str, Any], content_type: str) -> None:
    error = assert_rejected(document, content_type)
    assert "does not match Content-Type" in error.message
    assert error.detail == {"mediaType": document["mediaType"], "contentType": content_type}


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        ({"schemaVersion": 1, "name": "a", "tag": "t", "fsLayers": []}, mt.DOCKER_SCHEMA1),
        ({"schemaVersion": 1, "name": "a", "tag": "t", "fsLayers": []}, mt.DOCKER_SCHEMA1_SIGNED),
        ({"schemaVersion": 1, "name": "a", "tag": "t", "fsLayers": []}, "application/json"),
        ({"schemaVersion": 1, "name": "a", "tag": "t", "fsLayers": []}, None),
        ({"schemaVersion": 2, "mediaType": mt.DOCKER_SCHEMA1}, None),
        (oci_manifest(), mt.DOCKER_SCHEMA1_SIGNED),
    ],
)
def test_docker_schema1_is_rejected_with_a_clear_message(document: dict[str, Any], content_type: str | None) -> None:
    error = assert_rejected(document, content_type)
    assert "schema 1" in error.message
    assert "not supported" in error.message


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/octet-stream"])
def test_manifest_whose_media_type_is_given_nowhere_is_invalid(content_type: str | None) -> None:
    document = oci_manifest()
    del document["mediaType"]
    error = assert_rejected(document, content_type)
    assert "media type" in error.message


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/vnd.oci.artifact.manifest.v1+json", "application/vnd.example+json"]
)
def test_unknown_content_type_is_unsupported_with_415(content_type: str) -> None:
    error = assert_rejected(oci_manifest(), content_type, ErrorKind.MANIFEST_UNSUPPORTED)
    assert error.status == 415
    assert content_type in error.message
    assert set(error.detail["supported"]) == mt.SUPPORTED_MANIFEST_TYPES


@pytest.mark.parametrize("media_type", ["application/vnd.oci.artifact.manifest.v1+json", "text/plain"])
def test_unknown_media_type_field_is_unsupported_with_415(media_type: str) -> None:
    error = assert_rejected(oci_manifest(mediaType=media_type), "application/json", ErrorKind.MANIFEST_UNSUPPORTED)
    assert error.status == 415
    assert media_type in error.message


@pytest.mark.parametrize("media_type", [5, ["x"], {"a": "b"}, True])
def test_non_string_media_type_field_is_invalid(media_type: Any) -> None:
    error = assert_rejected(oci_manifest(mediaType=media_type), mt.OCI_MANIFEST)
    assert "mediaType must be a string" in error.message


@pytest.mark.parametrize("version", [None, 3, "2", 0, [2]])
def test_schema_version_other_than_2_is_invalid(version: Any) -> None:
    document = oci_manifest(schemaVersion=version)
    if version is None:
        del document["schemaVersion"]
    error = assert_rejected(document, mt.OCI_MANIFEST)
    assert "schemaVersion must be 2" in error.message


# --- the body: JSON object ---------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"{", b'{"schemaVersion": 2,}', b"not json", b"\x80\x81", b"{}garbage"])
def test_bytes_that_are_not_json_are_invalid(data: bytes) -> None:
    error = assert_rejected(data, mt.OCI_MANIFEST)
    assert "not valid JSON" in error.message


@pytest.mark.parametrize("document", [[], [oci_manifest()], "manifest", 2, None, True])
def test_json_that_is_not_an_object_is_invalid(document: Any) -> None:
    error = assert_rejected(document, mt.OCI_MANIFEST)
    assert "JSON object" in error.message


@pytest.mark.parametrize("artifact_type", [1, ["x"], {"a": "b"}])
def test_non_string_artifact_type_is_invalid(artifact_type: Any) -> None:
    error = assert_rejected(oci_manifest(artifactType=artifact_type), mt.OCI_MANIFEST)
    assert error.message == "artifactType must be a string"


@pytest.mark.parametrize("annotations", [[], "x", {"a": 1}, {"a": None}, {"a": ["b"]}])
def test_annotations_that_are_not_a_string_map_are_invalid(annotations: Any) -> None:
    error = assert_rejected(oci_manifest(annotations=annotations), mt.OCI_MANIFEST)
    assert error.message == "annotations must be an object of strings"


def test_manifest_without_config_is_invalid() -> None:
    document = oci_manifest()
    del document["config"]
    error = assert_rejected(document, mt.OCI_MANIFEST)
    assert error.message.startswith("config")


@pytest.mark.parametrize("layers", [{}, "layer", LAYER_A, None])
def test_layers_that_are_not_a_list_are_invalid(layers: Any) -> None:
    assert_rejected(oci_manifest(layers=layers), mt.OCI_MANIFEST)


@pytest.mark.parametrize("manifests", [{}, "m", None, "missing"])
def test_index_whose_manifests_are_not_a_list_is_invalid(manifests: Any) -> None:
    document = oci_index(manifests=manifests)
    if manifests == "missing":
        del document["manifests"]
    error = assert_rejected(document, mt.OCI_INDEX)
    assert "manifests must be a list" in error.message


# --- descriptors -------------------------------------------------------------------------

BAD_DESCRIPTORS: list[tuple[str, Any, str]] = [
    ("not an object", "sha256:abc", "must be a descriptor object"),
    ("a list", [LAYER_A], "must be a descriptor object"),
    ("missing mediaType", {k: v for k, v in LAYER_A.items() if k != "mediaType"}, ".mediaType"),
    ("empty mediaType", {**LAYER_A, "mediaType": ""}, ".mediaType"),
    ("numeric mediaType", {**LAYER_A, "mediaType": 7}, ".mediaType"),
    ("missing digest", {k: v for k, v in LAYER_A.items() if k != "digest"}, ".digest"),
    ("numeric digest", {**LAYER_A, "digest": 7}, ".digest"),
    ("short digest", {**LAYER_A, "digest": "sha256:abc"}, ".digest"),
    ("upper-case digest", {**LAYER_A, "digest": LAYER_A["digest"].upper()}, ".digest"),
    ("unknown digest algorithm", {**LAYER_A, "digest": "md5:" + "a" * 32}, ".digest"),
    ("missing size", {k: v for k, v in LAYER_A.items() if k != "size"}, ".size"),
    ("negative size", {**LAYER_A, "size": -1}, ".size"),
    ("boolean size", {**LAYER_A, "size": True}, ".size"),
    ("string size", {**LAYER_A, "size": "7"}, ".size"),
    ("float size", {**LAYER_A, "size": 7.5}, ".size"),
    ("null size", {**LAYER_A, "size": None}, ".size"),
    ("numeric artifactType", {**LAYER_A, "artifactType": 1}, ".artifactType"),
    ("platform not an object", {**LAYER_A, "platform": "linux/amd64"}, ".platform"),
    ("urls not a list", {**LAYER_A, "urls": "https://example.com/x"}, ".urls"),
    ("urls with a number", {**LAYER_A, "urls": ["https://example.com/x", 1]}, ".urls"),
    ("annotations with a number", {**LAYER_A, "annotations": {"a": 1}}, ".annotations"),
]


@pytest.mark.parametrize(("why", "bad", "says"), BAD_DESCRIPTORS, ids=[case[0] for case in BAD_DESCRIPTORS])
def test_bad_layer_descriptor_is_invalid_and_located(why: str, bad: Any, says: str) -> None:
    error = assert_rejected(oci_manifest(layers=[LAYER_A, bad]), mt.OCI_MANIFEST)
    assert error.message.startswith("layers[1]")
    assert says in error.message


@pytest.mark.parametrize(("why", "bad", "says"), BAD_DESCRIPTORS, ids=[case[0] for case in BAD_DESCRIPTORS])
def test_bad_config_descriptor_is_invalid_and_located(why: str, bad: Any, says: str) -> None:
    error = assert_rejected(oci_manifest(config=bad), mt.OCI_MANIFEST)
    assert error.message.startswith("config")
    assert says in error.message


@pytest.mark.parametrize(("why", "bad", "says"), BAD_DESCRIPTORS, ids=[case[0] for case in BAD_DESCRIPTORS])
def test_bad_index_child_descriptor_is_invalid_and_located(why: str, bad: Any, says: str) -> None:
    error = assert_rejected(oci_index(manifests=[bad]), mt.OCI_INDEX)
    assert error.message.startswith("manifests[0]")
    assert says in error.message


def test_bad_descriptor_digest_is_reported_as_manifest_invalid_with_the_digest() -> None:
    error = assert_rejected(oci_manifest(layers=[{**LAYER_A, "digest": "sha256:abc"}]), mt.OCI_MANIFEST)
    assert error.detail == {"digest": "sha256:abc"}
    assert error.status == 400


def test_descriptor_keeps_its_optional_fields() -> None:
    raw = descriptor(
        OCI_LAYER,
        b"x",
        artifactType=SBOM,
        annotations={"k": "v"},
        platform=LINUX_AMD64,
        urls=["https://example.com/x"],
        data="eA==",
    )
    parsed = parse_descriptor(raw, "layers[0]")
    assert parsed == Descriptor(
        media_type=OCI_LAYER,
        digest=digest_of(b"x"),
        size=1,
        artifact_type=SBOM,
        annotations={"k": "v"},
        platform=LINUX_AMD64,
        urls=("https://example.com/x",),
    )


def test_descriptor_of_zero_bytes_is_valid() -> None:
    assert parse_descriptor(descriptor(OCI_LAYER, b""), "layers[0]").size == 0


@settings(deadline=None)
@given(size=st.integers(min_value=0, max_value=2**63 - 1), content=st.binary(max_size=64))
def test_any_non_negative_size_and_real_digest_make_a_valid_descriptor(size: int, content: bytes) -> None:
    parsed = parse_descriptor({"mediaType": OCI_LAYER, "digest": str(digest_of(content)), "size": size}, "d")
    assert parsed.size == size
    assert parsed.digest == digest_of(content)


@settings(deadline=None)
@given(size=st.integers(max_value=-1))
def test_any_negative_size_makes_an_invalid_descriptor(size: int) -> None:
    with pytest.raises(RegistryError) as info:
        parse_descriptor({**LAYER_A, "size": size}, "d")
    assert info.value.kind is ErrorKind.MANIFEST_INVALID


# --- foreign layers ----------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [mt.DOCKER_FOREIGN_LAYER, OCI_NONDISTRIBUTABLE_LAYER])
def test_foreign_layer_with_urls_is_foreign(media_type: str) -> None:
    layer = descriptor(media_type, b"windows base", urls=["https://mcr.example.com/layer"])
    parsed = parse(oci_manifest(layers=[layer]), mt.OCI_MANIFEST)
    assert parsed.layers[0].is_foreign


@pytest.mark.parametrize("media_type", [mt.DOCKER_FOREIGN_LAYER, OCI_NONDISTRIBUTABLE_LAYER])
def test_foreign_layer_without_urls_is_not_foreign(media_type: str) -> None:
    assert not parse_descriptor(descriptor(media_type, b"x"), "layers[0]").is_foreign
    assert not parse_descriptor(descriptor(media_type, b"x", urls=[]), "layers[0]").is_foreign


def test_ordinary_layer_with_urls_is_not_foreign() -> None:
    layer = descriptor(OCI_LAYER, b"x", urls=["https://example.com/x"])
    assert not parse_descriptor(layer, "layers[0]").is_foreign
