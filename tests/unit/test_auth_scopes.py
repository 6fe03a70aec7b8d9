"""Docker token scopes (``repository:NAME:ACTIONS``): parsing, merging, and what the token server grants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.auth.accounts import AccountService, LoginLimits
from portside.auth.passwords import Passwords
from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind
from portside.auth.roles import Role
from portside.auth.scopes import Scope, merge_scopes, parse_scope, parse_scopes
from portside.metadata.records import RepositoryRecord

pytestmark = pytest.mark.anyio


def scope(kind: str, name: str, *actions: str) -> Scope:
    return Scope(kind, name, frozenset(actions))


# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:samalba/my-app:pull,push", scope("repository", "samalba/my-app", "pull", "push")),
        ("repository:samalba/my-app:pull", scope("repository", "samalba/my-app", "pull")),
        ("repository:app:*", scope("repository", "app", "*")),
        ("repository:a/b/c:delete", scope("repository", "a/b/c", "delete")),
        ("registry:catalog:*", scope("registry", "catalog", "*")),
        # A resource type may carry a class, which is not part of the type.
        ("repository(plugin):samalba/my-app:pull", scope("repository", "samalba/my-app", "pull")),
        # Names may carry a registry host with a port: only the last ':' separates the actions.
        ("repository:localhost:5000/app:pull", scope("repository", "localhost:5000/app", "pull")),
        (
            "repository:registry.example.com:443/team/app:pull,push",
            scope("repository", "registry.example.com:443/team/app", "pull", "push"),
        ),
        ("  repository:app:pull  ", scope("repository", "app", "pull")),
        ("repository:app:", scope("repository", "app")),
        ("repository:app:pull,pull", scope("repository", "app", "pull")),
    ],
)
def test_parse_scope(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "repository",
        "repository:app",
        ":app:pull",
        "repository::pull",
        "Repository:app:pull",
        "repository:app:PULL",
        "repository:app:pull,,push",
        "repository:app:pull,",
        "repository:app:pull push",
        "repository(Plugin):app:pull",
        "repository(plugin:app:pull",
        "repo-sitory:app:pull",
    ],
)
def test_malformed_scopes_are_none(text: str) -> None:
    assert parse_scope(text) is None


def test_parse_scopes_takes_repeated_and_space_separated_values_and_skips_malformed_ones() -> None:
    values = ["repository:a:pull repository:b:push", "nonsense", "registry:catalog:*", "repository:a:push"]
    assert parse_scopes(values) == [
        scope("repository", "a", "pull"),
        scope("repository", "b", "push"),
        scope("registry", "catalog", "*"),
        scope("repository", "a", "push"),
    ]
    assert parse_scopes([]) == []
    assert parse_scopes(["", "   "]) == []


def test_merge_scopes_unites_actions_per_resource_in_first_seen_order() -> None:
    merged = merge_scopes(
        [
            scope("repository", "b", "pull"),
            scope("repository", "a", "push"),
            scope("repository", "b", "push"),
            scope("registry", "b", "*"),
            scope("repository", "a", "pull"),
        ]
    )
    assert merged == [
        scope("repository", "b", "pull", "push"),
        scope("repository", "a", "pull", "push"),
        scope("registry", "b", "*"),
    ]
    assert merge_scopes([]) == []


def test_a_scope_prints_and_claims_its_actions_sorted() -> None:
    granted = scope("repository", "acme/app", "push", "pull")
    assert str(granted) == "repository:acme/app:pull,push"
    assert granted.as_claim() == {"type": "repository", "name": "acme/app", "actions": ["pull", "push"]}


names = st.from_regex(r"([a-z0-9.-]+(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+)*", fullmatch=True)
actions = st.frozensets(st.sampled_from(["pull", "push", "delete", "*"]), min_size=1)


@given(st.sampled_from(["repository", "registry"]), names, actions)
def test_a_printed_scope_parses_back(kind: str, name: str, wanted: frozenset[str]) -> None:
    assert parse_scope(str(Scope(kind, name, wanted))) == Scope(kind, name, wanted)


@given(st.text(max_size=60))
def test_parse_scope_never_raises(text: str) -> None:
    parsed = parse_scope(text)
    assert parsed is None or str(parsed).startswith(parsed.type)


# What the token server grants for requested scopes (AccountService.granted over a fake store)


class FakeStore:
    """The one store method ``granted`` needs."""

    def __init__(self, repositories: dict[str, bool]) -> None:
        self.repositories = repositories

    async def get_repository(self, name: str) -> RepositoryRecord | None:
        if name not in self.repositories:
            return None
        return RepositoryRecord(name, self.repositories[name], None, datetime.now(UTC))


@pytest.fixture
def accounts() -> AccountService:
    store = FakeStore({"acme/web": True, "acme/app": False})
    return AccountService(store, Passwords.__new__(Passwords), LoginLimits())  # type: ignore[arg-type]


def user(name: str, **fields: object) -> Principal:
    return Principal(PrincipalKind.USER, name, id=1, **fields)  # type: ignore[arg-type]


async def test_granted_is_the_requested_actions_the_policy_allows(accounts: AccountService) -> None:
    requested = [
        scope("repository", "acme/web", "pull", "push"),
        scope("repository", "acme/app", "pull", "push"),
        scope("repository", "acme/missing", "pull"),
    ]
    assert await accounts.granted(ANONYMOUS, requested) == [scope("repository", "acme/web", "pull")]
    writer = user("wes", repository_grants={"acme/app": Role.PUSH})
    assert await accounts.granted(writer, requested) == [
        scope("repository", "acme/web", "pull"),
        scope("repository", "acme/app", "pull", "push"),
    ]


async def test_star_is_granted_only_to_administrators(accounts: AccountService) -> None:
    requested = [scope("repository", "acme/app", "*", "pull")]
    owner = user("owen", owned_organizations=frozenset({"acme"}))
    assert await accounts.granted(owner, requested) == requested
    assert await accounts.granted(user("dana", repository_grants={"acme/app": Role.DELETE}), requested) == [
        scope("repository", "acme/app", "pull")
    ]
    assert await accounts.granted(user("alice", ceiling=Role.PUSH, is_admin=True), requested) == [
        scope("repository", "acme/app", "pull")
    ]


async def test_catalog_scope_is_granted_to_anyone_and_unknown_types_to_nobody(accounts: AccountService) -> None:
    requested = [
        scope("registry", "catalog", "*"),
        scope("registry", "other", "*"),
        scope("plugin", "acme/web", "pull"),
        scope("repository", "acme/web"),
    ]
    assert await accounts.granted(ANONYMOUS, requested) == [scope("registry", "catalog", "*")]
