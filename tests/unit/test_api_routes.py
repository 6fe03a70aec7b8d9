"""Matching ``/v2/`` paths to endpoints (distribution-spec "Endpoints" table).

Repository names contain ``/`` and may have components called ``blobs``, ``manifests``,
``uploads``, ``tags`` or ``referrers``; the endpoint is named by the end of the path.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.api.routes import ROUTES, Endpoint, match_v2_path

DIGEST = "sha256:" + "ab" * 32
UPLOAD_ID = "7b0f5a3e-8c2d-4a31-9b0e-5d6f1c2a3b4c"


def matched(path: str) -> tuple[Endpoint, str, str]:
    match = match_v2_path(path)
    assert match is not None, path
    return match.route.endpoint, match.name, match.reference


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/", (Endpoint.BASE, "", "")),
        ("/v2", (Endpoint.BASE, "", "")),
        ("/v2/_catalog", (Endpoint.CATALOG, "", "")),
        ("/v2/library/ubuntu/tags/list", (Endpoint.TAGS, "library/ubuntu", "")),
        ("/v2/a/manifests/latest", (Endpoint.MANIFEST, "a", "latest")),
        (f"/v2/a/b/c/manifests/{DIGEST}", (Endpoint.MANIFEST, "a/b/c", DIGEST)),
        ("/v2/a/blobs/uploads/", (Endpoint.UPLOADS, "a", "")),
        ("/v2/a/blobs/uploads", (Endpoint.UPLOADS, "a", "")),
        (f"/v2/a/blobs/uploads/{UPLOAD_ID}", (Endpoint.UPLOAD, "a", UPLOAD_ID)),
        (f"/v2/a/blobs/{DIGEST}", (Endpoint.BLOB, "a", DIGEST)),
        (f"/v2/a/b/referrers/{DIGEST}", (Endpoint.REFERRERS, "a/b", DIGEST)),
    ],
)
def test_every_spec_endpoint_is_matched(path: str, expected: tuple[Endpoint, str, str]) -> None:
    assert matched(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/blobs/blobs/uploads/", (Endpoint.UPLOADS, "blobs", "")),
        ("/v2/uploads/blobs/uploads/", (Endpoint.UPLOADS, "uploads", "")),
        ("/v2/manifests/manifests/latest", (Endpoint.MANIFEST, "manifests", "latest")),
        ("/v2/a/manifests/b/manifests/latest", (Endpoint.MANIFEST, "a/manifests/b", "latest")),
        ("/v2/a/blobs/manifests/uploads", (Endpoint.MANIFEST, "a/blobs", "uploads")),
        (f"/v2/a/blobs/blobs/{DIGEST}", (Endpoint.BLOB, "a/blobs", DIGEST)),
        (f"/v2/a/blobs/uploads/blobs/{DIGEST}", (Endpoint.BLOB, "a/blobs/uploads", DIGEST)),
        ("/v2/a/blobs/uploads/blobs/uploads/", (Endpoint.UPLOADS, "a/blobs/uploads", "")),
        (f"/v2/a/blobs/uploads/blobs/uploads/{UPLOAD_ID}", (Endpoint.UPLOAD, "a/blobs/uploads", UPLOAD_ID)),
        ("/v2/a/manifests/tags/list", (Endpoint.TAGS, "a/manifests", "")),
        ("/v2/tags/list/tags/list", (Endpoint.TAGS, "tags/list", "")),
        ("/v2/a/referrers/manifests/latest", (Endpoint.MANIFEST, "a/referrers", "latest")),
        (f"/v2/referrers/referrers/{DIGEST}", (Endpoint.REFERRERS, "referrers", DIGEST)),
        ("/v2/v2/manifests/v2", (Endpoint.MANIFEST, "v2", "v2")),
    ],
)
def test_name_with_components_named_like_endpoints_is_matched_whole(
    path: str, expected: tuple[Endpoint, str, str]
) -> None:
    assert matched(path) == expected


def test_uploads_without_trailing_slash_is_the_uploads_route_not_a_blob_named_uploads() -> None:
    assert matched("/v2/a/blobs/uploads") == (Endpoint.UPLOADS, "a", "")


def test_upload_session_and_blob_are_told_apart_by_the_uploads_segment() -> None:
    assert matched(f"/v2/a/blobs/uploads/{UPLOAD_ID}")[0] is Endpoint.UPLOAD
    assert matched(f"/v2/a/blobs/{UPLOAD_ID}")[0] is Endpoint.BLOB


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/v1/",
        "/v3/a/manifests/latest",
        "v2/a/manifests/latest",
        "/v2//",
        "/v2/a",
        "/v2/a/",
        "/v2/a/manifests",
        "/v2/a/manifests/",
        "/v2/a/manifests/a/b/extra",
        "/v2/a/blobs/",
        f"/v2/a/blobs/{DIGEST}/",
        f"/v2/a/blobs/uploads/{UPLOAD_ID}/extra",
        "/v2/a/tags",
        "/v2/a/tags/list/",
        "/v2/a/tags/lists",
        "/v2/a/referrers/",
        "/v2/_catalog/",
        "/v2/_catalog/x",
        "/v2/a/unknown/thing",
        "/v2/manifests/latest",
        "/v2/tags/list",
        f"/v2/blobs/{DIGEST}",
    ],
)
def test_unknown_path_matches_nothing(path: str) -> None:
    assert match_v2_path(path) is None


@pytest.mark.parametrize("path", ["/v2/\n", "/v2/_catalog\n", "/v2/a/tags/list\n"])
def test_path_with_trailing_newline_matches_nothing(path: str) -> None:
    assert match_v2_path(path) is None


def test_uploads_path_with_trailing_newline_is_an_upload_id_not_a_new_session() -> None:
    match = match_v2_path("/v2/a/blobs/uploads/\n")
    assert match is not None
    assert match.route.endpoint is Endpoint.UPLOAD
    assert match.reference == "\n"


# --- the route table ---------------------------------------------------------------------


def test_every_endpoint_has_exactly_one_route() -> None:
    assert sorted(route.endpoint.value for route in ROUTES) == sorted(endpoint.value for endpoint in Endpoint)


@pytest.mark.parametrize(
    ("endpoint", "methods"),
    [
        (Endpoint.BASE, {"GET", "HEAD"}),
        (Endpoint.CATALOG, {"GET"}),
        (Endpoint.TAGS, {"GET"}),
        (Endpoint.MANIFEST, {"GET", "HEAD", "PUT", "DELETE"}),
        (Endpoint.BLOB, {"GET", "HEAD", "DELETE"}),
        (Endpoint.UPLOADS, {"POST"}),
        (Endpoint.UPLOAD, {"GET", "PATCH", "PUT", "DELETE"}),
        (Endpoint.REFERRERS, {"GET"}),
    ],
)
def test_each_endpoint_allows_the_methods_the_spec_gives_it(endpoint: Endpoint, methods: set[str]) -> None:
    (route,) = [route for route in ROUTES if route.endpoint is endpoint]
    assert route.methods == methods


def test_every_route_template_is_under_v2() -> None:
    assert all(route.template.startswith("/v2/") for route in ROUTES)


# --- property: any valid name and reference is recovered ----------------------------------

TRICKY_WORDS = ["blobs", "uploads", "manifests", "tags", "list", "referrers", "v2", "catalog"]
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
alnum_runs = st.text(ALNUM, min_size=1, max_size=6)
separators = st.sampled_from([".", "_", "__", "-", "---"])
components = st.one_of(
    st.sampled_from(TRICKY_WORDS),
    st.builds(
        lambda run, rest: run + "".join(rest),
        alnum_runs,
        st.lists(st.builds(str.__add__, separators, alnum_runs), max_size=2),
    ),
)
names = st.lists(components, min_size=1, max_size=5).map("/".join)
tags = st.one_of(st.sampled_from(TRICKY_WORDS), st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}", fullmatch=True))
digests = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda raw: "sha256:" + raw.hex()),
    st.binary(min_size=64, max_size=64).map(lambda raw: "sha512:" + raw.hex()),
)
upload_ids = st.uuids().map(str)


@st.composite
def endpoint_paths(draw: st.DrawFn) -> tuple[str, Endpoint, str, str]:
    name = draw(names)
    endpoint = draw(st.sampled_from([e for e in Endpoint if e not in (Endpoint.BASE, Endpoint.CATALOG)]))
    if endpoint is Endpoint.TAGS:
        return f"/v2/{name}/tags/list", endpoint, name, ""
    if endpoint is Endpoint.MANIFEST:
        reference = draw(st.one_of(tags, digests))
        return f"/v2/{name}/manifests/{reference}", endpoint, name, reference
    if endpoint is Endpoint.BLOB:
        digest = draw(digests)
        return f"/v2/{name}/blobs/{digest}", endpoint, name, digest
    if endpoint is Endpoint.UPLOADS:
        return f"/v2/{name}/blobs/uploads{draw(st.sampled_from(['', '/']))}", endpoint, name, ""
    if endpoint is Endpoint.UPLOAD:
        upload_id = draw(upload_ids)
        return f"/v2/{name}/blobs/uploads/{upload_id}", endpoint, name, upload_id
    digest = draw(digests)
    return f"/v2/{name}/referrers/{digest}", endpoint, name, digest


@settings(deadline=None)
@given(case=endpoint_paths())
def test_any_valid_name_and_reference_are_recovered_from_their_path(case: tuple[str, Endpoint, str, str]) -> None:
    path, endpoint, name, reference = case
    assert matched(path) == (endpoint, name, reference)
