"""The pull-through cache's pure parts: challenges, routing by prefix and by containerd's ``ns``,
token lifetimes, the mirror pull rule in the policy, and mirror settings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind, RepositoryFacts, repository_role
from portside.auth.roles import Role
from portside.config import REVEAL_SECRETS, MirrorSettings, Settings, load_settings
from portside.proxy.challenge import parse_challenge
from portside.proxy.routing import local_name_for_ns, mirror_for, mirrors_from, upstream_host
from portside.proxy.upstream import DEFAULT_TOKEN_SECONDS, TOKEN_MARGIN_SECONDS, token_lifetime


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("PORTSIDE_"):
            monkeypatch.delenv(name)
    yield


# Challenges


def test_bearer_challenge_gives_realm_service_and_scope_with_commas_inside_quotes() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull,push"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.docker.io/token"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull,push",
    }


def test_basic_challenge_and_case_of_scheme_and_parameter_names() -> None:
    challenge = parse_challenge('BASIC Realm="portside", charset="UTF-8"')
    assert challenge is not None
    assert challenge.scheme == "basic"
    assert challenge.params == {"realm": "portside", "charset": "UTF-8"}


def test_unquoted_values_spaces_and_escaped_quotes_are_understood() -> None:
    challenge = parse_challenge('Bearer realm=http://127.0.0.1:5000/token , service = "a \\"b\\""')
    assert challenge is not None
    assert challenge.params == {"realm": "http://127.0.0.1:5000/token", "service": 'a "b"'}


@pytest.mark.parametrize("header", [None, "", "   ", "=broken", '"quoted" realm="x"'])
def test_missing_or_garbled_challenges_are_none(header: str | None) -> None:
    assert parse_challenge(header) is None


def test_a_second_challenge_stops_parameter_parsing() -> None:
    challenge = parse_challenge('Bearer realm="https://a/token",service="s", Basic realm="b"')
    assert challenge is not None
    assert challenge.params == {"realm": "https://a/token", "service": "s"}


@given(st.text(max_size=200))
def test_parsing_never_raises(header: str) -> None:
    parse_challenge(header)


# Token lifetimes


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        ({"token": "t", "expires_in": 300}, 300 - TOKEN_MARGIN_SECONDS),
        ({"token": "t"}, DEFAULT_TOKEN_SECONDS - TOKEN_MARGIN_SECONDS),
        ({"token": "t", "expires_in": "300"}, DEFAULT_TOKEN_SECONDS - TOKEN_MARGIN_SECONDS),
        ({"token": "t", "expires_in": 0}, DEFAULT_TOKEN_SECONDS - TOKEN_MARGIN_SECONDS),
        ({"token": "t", "expires_in": 5}, 1.0),
    ],
)
def test_token_is_used_until_shortly_before_it_expires(body: dict[str, object], seconds: float) -> None:
    assert token_lifetime(body) == seconds


# Routing


def _mirrors(*specs: dict[str, object]) -> list[MirrorSettings]:
    return [MirrorSettings.model_validate(spec) for spec in specs]


MIRRORS = mirrors_from(
    _mirrors(
        {"prefix": "hub", "upstream": "https://registry-1.docker.io", "host": "docker.io"},
        {"prefix": "hub/ghcr", "upstream": "https://ghcr.io"},
        {"prefix": "quay", "upstream": "http://127.0.0.1:8080"},
    )
)


def test_a_name_under_a_prefix_maps_to_the_rest_of_the_name_upstream() -> None:
    target = mirror_for(MIRRORS, "hub/library/alpine")
    assert target is not None
    assert target.mirror.upstream == "https://registry-1.docker.io"
    assert target.upstream_name == "library/alpine"


def test_official_docker_hub_images_are_asked_for_under_library() -> None:
    alpine = mirror_for(MIRRORS, "hub/alpine")
    assert alpine is not None
    assert alpine.upstream_name == "library/alpine"
    # Only on Docker Hub, and only for one-component names.
    other = mirror_for(MIRRORS, "quay/alpine")
    assert other is not None
    assert other.upstream_name == "alpine"
    user_image = mirror_for(MIRRORS, "hub/bitnami/redis")
    assert user_image is not None
    assert user_image.upstream_name == "bitnami/redis"


def test_the_longest_prefix_wins() -> None:
    target = mirror_for(MIRRORS, "hub/ghcr/owner/tool")
    assert target is not None
    assert (target.mirror.upstream, target.upstream_name) == ("https://ghcr.io", "owner/tool")


@pytest.mark.parametrize("name", ["hub", "hubble/app", "local/app", "quayside/x"])
def test_names_outside_every_prefix_are_local(name: str) -> None:
    assert mirror_for(MIRRORS, name) is None


def test_the_whole_registry_mirror_takes_what_no_prefix_takes() -> None:
    mirrors = mirrors_from(
        _mirrors({"prefix": "", "upstream": "http://up:5000"}, {"prefix": "hub", "upstream": "http://hub:5000"})
    )
    whole = mirror_for(mirrors, "library/alpine")
    assert whole is not None
    assert whole.mirror.whole_registry
    assert whole.upstream_name == "library/alpine"
    prefixed = mirror_for(mirrors, "hub/library/alpine")
    assert prefixed is not None
    assert (prefixed.mirror.prefix, prefixed.upstream_name) == ("hub", "library/alpine")


def test_ns_picks_the_mirror_by_host_and_prefixes_the_name() -> None:
    assert local_name_for_ns(MIRRORS, "docker.io", "library/alpine") == "hub/library/alpine"
    # Without `host`, a mirror answers to its upstream's host[:port].
    assert local_name_for_ns(MIRRORS, "127.0.0.1:8080", "team/app") == "quay/team/app"
    assert local_name_for_ns(MIRRORS, "ghcr.io", "owner/tool") == "hub/ghcr/owner/tool"
    assert local_name_for_ns(MIRRORS, "registry.k8s.io", "pause") is None


def test_ns_of_the_whole_registry_mirror_keeps_the_name() -> None:
    mirrors = mirrors_from(_mirrors({"prefix": "", "upstream": "https://registry-1.docker.io", "host": "docker.io"}))
    assert local_name_for_ns(mirrors, "docker.io", "library/alpine") == "library/alpine"


def test_upstream_host_is_host_and_port() -> None:
    assert upstream_host("https://registry-1.docker.io") == "registry-1.docker.io"
    assert upstream_host("http://127.0.0.1:5000/") == "127.0.0.1:5000"


# The policy's mirror rule

USER = Principal(PrincipalKind.USER, "bob", id=1)
ROBOT = Principal(PrincipalKind.ROBOT, "acme+ci", id=2)


def _facts(rule: str | None) -> RepositoryFacts:
    return RepositoryFacts("hub/library/alpine", exists=True, public=False, mirror_pull=rule)


def test_public_mirror_lets_everyone_pull_and_no_more() -> None:
    for principal in (ANONYMOUS, USER, ROBOT):
        assert repository_role(principal, _facts("public")) == Role.PULL


def test_authenticated_mirror_lets_signed_in_users_pull() -> None:
    assert repository_role(USER, _facts("authenticated")) == Role.PULL
    assert repository_role(ANONYMOUS, _facts("authenticated")) is None
    # Robots have only what is granted to them.
    assert repository_role(ROBOT, _facts("authenticated")) is None


def test_without_a_mirror_rule_the_usual_rules_apply() -> None:
    assert repository_role(USER, _facts(None)) is None
    granted = Principal(PrincipalKind.USER, "carol", id=3, namespace_grants={"hub": Role.PULL})
    assert repository_role(granted, _facts(None)) == Role.PULL


def test_a_token_ceiling_still_caps_a_mirror_pull() -> None:
    capped = Principal(PrincipalKind.USER, "bob", id=1, ceiling=Role.PULL)
    assert repository_role(capped, _facts("public")) == Role.PULL


# Settings


def test_mirrors_come_from_toml_tables(tmp_path: Path) -> None:
    config = tmp_path / "portside.toml"
    config.write_text(
        '[[mirrors]]\nprefix = "hub"\nupstream = "https://registry-1.docker.io/"\nhost = "docker.io"\n'
        'username = "me"\npassword = "s3cret"\nmanifest_ttl_seconds = 60\n\n'
        '[[mirrors]]\nupstream = "http://127.0.0.1:5001"\npull = "public"\n'
    )
    settings = load_settings(config)
    hub, whole = settings.mirrors
    assert (hub.prefix, hub.upstream, hub.host, hub.manifest_ttl_seconds) == (
        "hub",
        "https://registry-1.docker.io",
        "docker.io",
        60,
    )
    assert hub.pull == "authenticated"
    assert hub.password is not None and hub.password.get_secret_value() == "s3cret"
    assert (whole.prefix, whole.pull) == ("", "public")


def test_mirrors_come_from_a_json_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_MIRRORS", json.dumps([{"prefix": "/hub/", "upstream": "http://127.0.0.1:9"}]))
    (mirror,) = Settings().mirrors
    assert mirror.prefix == "hub"


def test_mirror_password_is_masked_when_shown_and_revealed_for_workers() -> None:
    settings = Settings(mirrors=_mirrors({"upstream": "http://u", "username": "me", "password": "s3cret"}))
    assert "s3cret" not in settings.model_dump_json()
    assert "s3cret" not in repr(settings)
    revealed = Settings.model_validate_json(settings.model_dump_json(context=REVEAL_SECRETS))
    password = revealed.mirrors[0].password
    assert password is not None and password.get_secret_value() == "s3cret"


@pytest.mark.parametrize(
    ("mirrors", "message"),
    [
        ([{"upstream": "ftp://x"}], "http:// or https://"),
        ([{"prefix": "Hub", "upstream": "http://x"}], "lower-case"),
        ([{"prefix": "hub//x", "upstream": "http://x"}], "lower-case"),
        ([{"upstream": "http://x", "password": "p"}], "needs a username"),
        ([{"upstream": "http://x", "pull": "everyone"}], "pull"),
        ([{"upstream": "http://x", "manifest_ttl_seconds": -1}], "manifest_ttl_seconds"),
        ([{"upstream": "http://x", "colour": "red"}], "colour"),
        ([{"prefix": "hub", "upstream": "http://x"}, {"prefix": "hub/", "upstream": "http://y"}], "same prefix"),
    ],
)
def test_bad_mirror_settings_stop_with_a_message(mirrors: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({"mirrors": mirrors})
