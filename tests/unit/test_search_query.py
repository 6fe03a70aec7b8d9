"""Search query parsing, facets of manifests, name terms and the docker search body: pure logic."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.api.search_v1 import parse_positive, search_document
from portside.metadata.search_documents import name_terms
from portside.metadata.search_store import namespace_of
from portside.oci.errors import RegistryError
from portside.oci.manifest import parse_manifest
from portside.search.facets import Facet, facets_of, wants_config
from portside.search.query import KeyValue, PlatformFilter, QueryError, SearchQuery, parse_query, text_terms
from portside.search.results import SearchHit, SearchPage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def test_free_text_and_qualifiers_are_told_apart() -> None:
    query = parse_query(
        "nginx proxy namespace:Acme label:maintainer=ops annotation:org.opencontainers.image.licenses=MIT "
        "type:application/vnd.cncf.helm.config.v1+json platform:Linux/ARM64"
    )
    assert query.text == "nginx proxy"
    assert query.terms == ("nginx", "proxy")
    assert query.namespace == "acme"
    assert query.labels == (KeyValue("maintainer", "ops"),)
    assert query.annotations == (KeyValue("org.opencontainers.image.licenses", "MIT"),)
    assert query.artifact_type == "application/vnd.cncf.helm.config.v1+json"
    assert query.platform == PlatformFilter("linux", "arm64")
    assert query.has_filters


def test_parameters_and_qualifiers_combine() -> None:
    query = parse_query("label:a", labels=["b=2"], annotations=["c"], namespace="ns", platform="linux")
    assert query.labels == (KeyValue("b", "2"), KeyValue("a"))
    assert query.annotations == (KeyValue("c"),)
    assert (query.namespace, query.platform) == ("ns", PlatformFilter("linux"))


def test_unknown_or_empty_qualifiers_are_plain_words() -> None:
    query = parse_query("colour:red label: http://x")
    assert query.text == "colour:red label: http://x"
    assert query.terms == ("colour", "red", "label", "http", "x")
    assert not query.has_filters


def test_a_label_value_may_hold_equals_signs_and_be_empty() -> None:
    assert KeyValue.parse("a=b=c", "label") == KeyValue("a", "b=c")
    assert KeyValue.parse("a=", "label") == KeyValue("a", "")
    assert str(KeyValue("a", "b")) == "a=b" and str(KeyValue("a")) == "a"


@pytest.mark.parametrize("bad", ["=x", " =x", ""])
def test_a_label_filter_needs_a_key(bad: str) -> None:
    with pytest.raises(QueryError, match="needs a key"):
        parse_query("", labels=[bad])


@pytest.mark.parametrize("bad", ["a//b", "/", "linux/arm/v7/x", "linux/"])
def test_platforms_are_os_arch_variant(bad: str) -> None:
    with pytest.raises(QueryError, match="platform must be"):
        PlatformFilter.parse(bad)


def test_platform_keys() -> None:
    assert PlatformFilter.parse("linux/arm/v7").key == "linux/arm/v7"
    assert PlatformFilter.parse("windows").key == "windows"


@pytest.mark.parametrize(("page", "per_page"), [(0, 25), (1, 0), (1, 101), (-1, 10)])
def test_pages_are_checked(page: int, per_page: int) -> None:
    with pytest.raises(QueryError):
        SearchQuery(page=page, per_page=per_page)


def test_long_queries_are_refused() -> None:
    with pytest.raises(QueryError, match="longer than"):
        parse_query("x" * 513)


def test_terms_are_lowercase_unique_words_without_syntax() -> None:
    assert text_terms('Foo "bar" foo* OR -baz NEAR(x) ünïcode a_b _') == (
        "foo",
        "bar",
        "or",
        "baz",
        "near",
        "x",
        "ünïcode",
        "a_b",
    )
    assert len(text_terms(" ".join(f"w{i}" for i in range(40)))) == 16


@given(st.text(max_size=200))
def test_terms_never_carry_query_syntax(text: str) -> None:
    for term in text_terms(text):
        assert term and all(c.isalnum() or c == "_" for c in term), term
        assert term == term.lower()


def test_offsets_follow_pages() -> None:
    assert SearchQuery(page=3, per_page=10).offset == 20
    assert SearchQuery(text="  Acme/App ").phrase == "acme/app"


def test_name_terms_find_each_component_with_and_without_separators() -> None:
    assert name_terms("Acme/web-app") == "acme/web-app acme web-app acme webapp"
    assert namespace_of("acme/team/app") == "acme" and namespace_of("solo") == "solo"


def manifest(document: dict[str, object]) -> bytes:
    return json.dumps(document).encode()


def test_image_facets_come_from_annotations_and_the_config() -> None:
    parsed = parse_manifest(
        manifest(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": DIGEST, "size": 120},
                "layers": [],
                "annotations": {"org.opencontainers.image.title": "Web"},
            }
        ),
        OCI_MANIFEST,
    )
    assert wants_config(parsed)
    config = json.dumps(
        {"os": "Linux", "architecture": "arm", "variant": "v7", "config": {"Labels": {"maintainer": "ops", "": "x"}}}
    ).encode()
    assert sorted(facets_of(parsed, config), key=lambda f: (f.kind, f.key)) == [
        Facet("annotation", "org.opencontainers.image.title", "Web"),
        Facet("label", "maintainer", "ops"),
        Facet("platform", "linux/arm/v7"),
    ]
    # A config that is not JSON, or has no labels, adds nothing.
    assert facets_of(parsed, b"not json") == [Facet("annotation", "org.opencontainers.image.title", "Web")]
    assert facets_of(parsed, b"[]") == [Facet("annotation", "org.opencontainers.image.title", "Web")]


def test_nul_characters_never_reach_the_database() -> None:
    parsed = parse_manifest(
        manifest(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": DIGEST, "size": 60},
                "layers": [],
                "annotations": {"a\u0000b": "c\u0000d"},
            }
        ),
        OCI_MANIFEST,
    )
    config = json.dumps({"config": {"Labels": {"x\u0000": "\u0000y"}}}).encode()
    assert sorted(facets_of(parsed, config), key=lambda f: f.kind) == [
        Facet("annotation", "ab", "cd"),
        Facet("label", "x", "y"),
    ]


def test_index_facets_are_its_platforms_and_annotations() -> None:
    parsed = parse_manifest(
        manifest(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": DIGEST,
                        "size": 1,
                        "platform": {"os": "linux", "architecture": "amd64"},
                    },
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": OTHER,
                        "size": 1,
                        "platform": {"os": "linux", "architecture": "amd64"},
                    },
                    {"mediaType": OCI_MANIFEST, "digest": OTHER, "size": 1},
                ],
                "annotations": {"k": "v"},
            }
        ),
        OCI_INDEX,
    )
    assert not wants_config(parsed)
    assert facets_of(parsed, None) == [Facet("annotation", "k", "v"), Facet("platform", "linux/amd64")]


def test_artifacts_have_their_type_and_their_config_is_not_read() -> None:
    parsed = parse_manifest(
        manifest(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.example.sbom",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                    "size": 2,
                },
                "layers": [],
            }
        ),
        OCI_MANIFEST,
    )
    assert not wants_config(parsed)
    assert facets_of(parsed, None) == [Facet("artifact_type", "application/vnd.example.sbom")]


def test_huge_configs_are_not_read() -> None:
    parsed = parse_manifest(
        manifest(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": DIGEST, "size": 10 * 1024 * 1024},
                "layers": [],
            }
        ),
        OCI_MANIFEST,
    )
    assert not wants_config(parsed)


@pytest.mark.parametrize(("value", "expected"), [(None, 25), ("", 25), ("1", 1), ("100", 100)])
def test_n_defaults_to_25_and_goes_up_to_100(value: str | None, expected: int) -> None:
    assert parse_positive(value, "n", 25, 100) == expected


@pytest.mark.parametrize("value", ["0", "101", "-3", "1.5", "x", "\u0661"])
def test_bad_n_is_a_clear_400(value: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse_positive(value, "n", 25, 100)
    assert raised.value.status == 400
    assert "between 1 and 100" in raised.value.message


def test_the_docker_search_body_has_the_daemons_fields() -> None:
    hit = SearchHit("acme/app", "acme", None, "public", 3, 9, None)
    page = SearchPage(SearchQuery(text="app", page=2, per_page=1), (hit,), 3)
    assert search_document(page, "app") == {
        "query": "app",
        "num_results": 3,
        "num_pages": 3,
        "page": 2,
        "page_size": 1,
        "results": [
            {"name": "acme/app", "description": "", "star_count": 3, "is_official": False, "is_automated": False}
        ],
    }


def test_the_last_page_is_10000() -> None:
    assert SearchQuery(page=10_000).offset == 9_999 * 25
    with pytest.raises(QueryError, match="between 1 and 10000"):
        SearchQuery(page=10_001)


@pytest.mark.parametrize(
    "arguments",
    [
        {"q": "a\x00b"},
        {"q": "namespace:x\x00"},
        {"namespace": "\x00"},
        {"labels": ["k=\x00"]},
        {"annotations": ["\x00"]},
        {"artifact_type": "t\x00"},
        {"platform": "linux/\x00"},
    ],
)
def test_nul_characters_are_refused_anywhere(arguments: dict[str, object]) -> None:
    with pytest.raises(QueryError, match="NUL"):
        parse_query(**{"q": "", **arguments})  # type: ignore[arg-type]
