"""Pure helpers of the web UI: formatting, paths, CSRF tokens, safe redirects, image summaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from portside.api.web.browse_pages import search_query
from portside.api.web.formatting import (
    RepositoryTarget,
    human_size,
    manifest_path,
    parse_repository_path,
    pull_command,
    repository_path,
    short_digest,
    tag_path,
    timestamp,
)
from portside.auth.web_sessions import csrf_token, csrf_valid, load_web_key, safe_next, session_id_of
from portside.metadata.browse_store import TaggedManifestRow
from portside.oci.manifest import parse_manifest
from portside.registry.browse import (
    image_size,
    platform_name,
    referrer_kind,
    summarise_config,
    tag_summaries,
)
from portside.search.query import QueryError

DIGEST = "sha256:" + "ab" * 32
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def test_sizes_read_like_docker_images() -> None:
    assert human_size(0) == "0 B"
    assert human_size(999) == "999 B"
    assert human_size(1000) == "1.0 KB"
    assert human_size(2_500_000) == "2.5 MB"
    assert human_size(3 * 10**15) == "3.0 PB"
    assert human_size(None) == "-"


def test_short_digest_keeps_the_algorithm() -> None:
    assert short_digest(DIGEST) == "sha256:abababababab"
    assert short_digest("") == ""


def test_timestamps_are_utc_to_the_minute() -> None:
    moment = datetime(2026, 11, 28, 10, 15, 30, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(moment) == "2026-11-28 09:15 UTC"
    assert timestamp(datetime(2026, 1, 2, 3, 4)) == "2026-01-02 03:04 UTC"
    assert timestamp(None) == "-"


def test_paths_keep_slashes_of_names_and_escape_the_rest() -> None:
    assert repository_path("acme/tools/app") == "/r/acme/tools/app"
    assert tag_path("acme/app", "v1.0") == "/r/acme/app/-/tag/v1.0"
    assert manifest_path("acme/app", DIGEST) == f"/r/acme/app/-/manifest/{DIGEST}"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("acme/app", RepositoryTarget("acme/app", "repository")),
        ("acme/app/", RepositoryTarget("acme/app", "repository")),
        ("acme/app/-/tag/v1.2", RepositoryTarget("acme/app", "tag", "v1.2")),
        (f"a/b/c/-/manifest/{DIGEST}", RepositoryTarget("a/b/c", "manifest", DIGEST)),
        ("Acme/app", None),
        ("acme/app/-/tag/", None),
        ("acme/app/-/tag/.hidden", None),
        ("acme/app/-/manifest/not-a-digest", None),
        ("acme/app/-/settings", None),
        ("acme/app/-/star", RepositoryTarget("acme/app", "star")),
        ("acme/app/-/star/x", None),
        ("acme//app", None),
    ],
)
def test_repository_paths_split_at_the_dash_component(path: str, expected: RepositoryTarget | None) -> None:
    assert parse_repository_path(path) == expected


def test_pull_command_uses_a_colon_for_tags_and_an_at_for_digests() -> None:
    assert pull_command("registry.example:5000", "acme/app", "v1") == "docker pull registry.example:5000/acme/app:v1"
    assert pull_command("r.example", "acme/app", DIGEST) == f"docker pull r.example/acme/app@{DIGEST}"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/r/acme/app", "/r/acme/app"),
        ("/search?q=x", "/search?q=x"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
    ],
)
def test_only_local_paths_are_followed_after_sign_in(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_csrf_tokens_are_bound_to_their_session_and_key() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    token = csrf_token(key, "session-a")
    assert csrf_valid(key, "session-a", token)
    assert not csrf_valid(key, "session-b", token)
    assert not csrf_valid(other_key, "session-a", token)
    assert not csrf_valid(key, "session-a", None)
    assert not csrf_valid(key, None, token)
    assert not csrf_valid(key, "session-a", token[:-1])


def test_session_ids_are_digests_of_the_cookie_secret() -> None:
    assert session_id_of("secret") != "secret"
    assert session_id_of("secret") == session_id_of("secret")
    assert len(session_id_of("secret")) == 64


def test_the_web_key_is_created_once_and_then_shared(tmp_path: Path) -> None:
    first = load_web_key(tmp_path / "keys")
    assert len(first) == 32
    assert load_web_key(tmp_path / "keys") == first
    assert (tmp_path / "keys" / "web.key").stat().st_mode & 0o077 == 0
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.startswith(".")]


def test_a_truncated_web_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "web.key").write_text("c2hvcnQ=\n")
    with pytest.raises(ValueError, match="shorter"):
        load_web_key(tmp_path)


def _form(**values: str) -> dict[str, str]:
    fields = ("q", "namespace", "label", "annotation", "type", "os", "arch", "sort")
    return {name: values.get(name, "") for name in fields}


def test_search_form_becomes_a_query() -> None:
    query = search_query(_form(q="web", label="maintainer=ops", os="linux", arch="arm64", sort="recent"), 2)
    assert query.text == "web"
    assert [str(label) for label in query.labels] == ["maintainer=ops"]
    assert query.platform is not None and query.platform.key == "linux/arm64"
    assert (query.page, query.sort) == (2, "recent")


def test_search_form_errors_say_what_is_wrong() -> None:
    with pytest.raises(QueryError, match="operating system"):
        search_query(_form(arch="arm64"), 1)
    with pytest.raises(QueryError, match="sort by one of"):
        search_query(_form(sort="random"), 1)


CONFIG = {
    "architecture": "arm64",
    "os": "linux",
    "variant": "v8",
    "created": "2026-11-01T10:00:00Z",
    "config": {
        "Env": ["PATH=/bin", "MODE=prod"],
        "Entrypoint": ["/bin/app"],
        "Cmd": "serve",
        "WorkingDir": "/srv",
        "User": "app",
        "ExposedPorts": {"8080/tcp": {}, "443/tcp": {}},
        "Labels": {"maintainer": "ops"},
    },
    "history": [{"created_by": "ADD x /"}, {"created_by": "CMD serve", "empty_layer": True}, "junk"],
}


def test_image_config_summary_has_what_people_look_at() -> None:
    summary = summarise_config(json.dumps(CONFIG).encode())
    assert summary is not None
    assert summary.platform == "linux/arm64/v8"
    assert summary.env == ("PATH=/bin", "MODE=prod")
    assert summary.entrypoint == ("/bin/app",)
    assert summary.cmd == ("serve",)
    assert (summary.working_dir, summary.user) == ("/srv", "app")
    assert summary.exposed_ports == ("443/tcp", "8080/tcp")
    assert summary.labels == {"maintainer": "ops"}
    assert [step.created_by for step in summary.history] == ["ADD x /", "CMD serve"]
    assert [step.empty_layer for step in summary.history] == [False, True]


def test_configs_that_are_not_image_configs_summarise_to_nothing_or_little() -> None:
    assert summarise_config(b"not json") is None
    assert summarise_config(b"[1, 2]") is None
    empty = summarise_config(b"{}")
    assert empty is not None and empty.platform is None and empty.env == () and empty.entrypoint is None


@pytest.mark.parametrize(
    ("artifact_type", "kind"),
    [
        ("application/vnd.dev.cosign.artifact.sig.v1+json", "Signature"),
        ("application/vnd.cncf.notary.signature", "Signature"),
        ("application/spdx+json", "SBOM"),
        ("application/vnd.cyclonedx+json", "SBOM"),
        ("application/vnd.in-toto+json", "Attestation"),
        ("application/vnd.example.thing", "Artifact"),
        (None, "Artifact"),
    ],
)
def test_referrers_are_named_by_artifact_type(artifact_type: str | None, kind: str) -> None:
    assert referrer_kind(artifact_type) == kind


def test_platform_names() -> None:
    assert platform_name({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert platform_name(None) == "unknown"


def _image(config_size: int, layer_sizes: list[int]) -> bytes:
    def descriptor(media_type: str, size: int, n: int) -> dict[str, object]:
        return {"mediaType": media_type, "digest": "sha256:" + f"{n:02x}" * 32, "size": size}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", config_size, 1),
            "layers": [
                descriptor("application/vnd.oci.image.layer.v1.tar+gzip", size, i + 2)
                for i, size in enumerate(layer_sizes)
            ],
        }
    ).encode()


def test_image_size_is_config_plus_layers() -> None:
    parsed = parse_manifest(_image(100, [1000, 2000]), "application/vnd.oci.image.manifest.v1+json")
    assert image_size(parsed) == 3100


def test_tags_table_sums_an_index_over_its_platforms() -> None:
    amd, arm = _image(10, [100]), _image(20, [200, 300])
    amd_digest, arm_digest = "sha256:" + "a1" * 32, "sha256:" + "b2" * 32
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "size": 500,
                    "platform": {"os": "linux", "architecture": arch},
                }
                for digest, arch in ((amd_digest, "amd64"), (arm_digest, "arm64"))
            ],
        }
    ).encode()
    now = datetime.now(UTC)
    oci_index, oci_image = "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"
    rows = [
        TaggedManifestRow("multi", "sha256:" + "cc" * 32, now, oci_index, len(index), index),
        TaggedManifestRow("amd", amd_digest, now, oci_image, len(amd), amd),
    ]
    children = {amd_digest: (oci_image, amd), arm_digest: (oci_image, arm)}
    summaries = tag_summaries(rows, children, {amd_digest: ["linux/amd64"]})
    assert [(s.name, s.size, s.platforms, s.is_index) for s in summaries] == [
        ("multi", 630, ("linux/amd64", "linux/arm64"), True),
        ("amd", 110, ("linux/amd64",), False),
    ]
    # A child that is not in the repository leaves the index's size unknown, not wrong.
    partial = tag_summaries(rows[:1], {amd_digest: (oci_image, amd)}, {})
    assert partial[0].size is None
