"""The one access policy (``auth/policy.py``), roles, and what listings may show: every rule, as data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.auth.accounts import AccountService, _grant_maps
from portside.auth.policy import (
    ANONYMOUS,
    Principal,
    PrincipalKind,
    RepositoryFacts,
    may_administer_namespace,
    repository_role,
)
from portside.auth.roles import ROLE_ACTIONS, Role, actions_for, role_for_action
from portside.metadata.records import Visibility

PUBLIC = RepositoryFacts("acme/web", exists=True, public=True)
PRIVATE = RepositoryFacts("acme/app", exists=True, public=False)
MISSING = RepositoryFacts("acme/new", exists=False, public=False)


def user(name: str = "alice", **fields: object) -> Principal:
    return Principal(PrincipalKind.USER, name, id=1, **fields)  # type: ignore[arg-type]


def robot(name: str = "acme+ci", **fields: object) -> Principal:
    return Principal(PrincipalKind.ROBOT, name, id=2, **fields)  # type: ignore[arg-type]


# Roles


def test_roles_are_ordered_and_each_includes_the_ones_below() -> None:
    assert Role.PULL < Role.PUSH < Role.DELETE < Role.ADMIN
    for lower, higher in zip(list(Role), list(Role)[1:], strict=False):
        assert ROLE_ACTIONS[lower] < ROLE_ACTIONS[higher]
    assert actions_for(Role.PULL) == {"pull"}
    assert actions_for(Role.PUSH) == {"pull", "push"}
    assert actions_for(Role.DELETE) == {"pull", "push", "delete"}
    assert actions_for(Role.ADMIN) == {"pull", "push", "delete", "*"}
    assert actions_for(None) == frozenset()


@pytest.mark.parametrize(("text", "role"), [("pull", Role.PULL), (" Push ", Role.PUSH), ("DELETE", Role.DELETE)])
def test_role_parse(text: str, role: Role) -> None:
    assert Role.parse(text) is role
    assert Role.parse(role.label) is role


@pytest.mark.parametrize("text", ["", "read", "owner", "pull,push"])
def test_role_parse_refuses_unknown_roles(text: str) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse(text)


def test_the_least_role_for_an_action() -> None:
    assert role_for_action("pull") is Role.PULL
    assert role_for_action("push") is Role.PUSH
    assert role_for_action("delete") is Role.DELETE
    assert role_for_action("*") is Role.ADMIN
    assert role_for_action("anything-else") is Role.ADMIN


# Public pull


def test_anyone_may_pull_a_public_repository_and_no_more() -> None:
    assert repository_role(ANONYMOUS, PUBLIC) is Role.PULL
    assert repository_role(user("stranger"), PUBLIC) is Role.PULL
    assert repository_role(robot("other+bot"), PUBLIC) is Role.PULL


def test_nobody_without_a_rule_may_touch_a_private_repository() -> None:
    assert repository_role(ANONYMOUS, PRIVATE) is None
    assert repository_role(user("stranger"), PRIVATE) is None
    assert repository_role(robot("acme+ci"), PRIVATE) is None


def test_a_missing_repository_is_never_public() -> None:
    # Whatever a stale record says, a repository that does not exist gives nothing away.
    ghost = RepositoryFacts("acme/ghost", exists=False, public=True)
    assert repository_role(ANONYMOUS, ghost) is None
    assert repository_role(user("stranger"), ghost) is None


# Site administrators


@pytest.mark.parametrize("facts", [PUBLIC, PRIVATE, MISSING], ids=["public", "private", "missing"])
def test_a_site_admin_administers_every_repository(facts: RepositoryFacts) -> None:
    assert repository_role(user("root", is_admin=True), facts) is Role.ADMIN
    assert may_administer_namespace(user("root", is_admin=True), "acme")


# Own namespace


def test_a_user_administers_their_own_namespace_including_repositories_not_yet_pushed() -> None:
    alice = user("alice")
    assert repository_role(alice, RepositoryFacts("alice/app", True, False)) is Role.ADMIN
    assert repository_role(alice, RepositoryFacts("alice/deep/nested", True, False)) is Role.ADMIN
    assert repository_role(alice, RepositoryFacts("alice/new", False, False)) is Role.ADMIN
    assert may_administer_namespace(alice, "alice")


@pytest.mark.parametrize("name", ["alicex/app", "alic/app", "bob/alice", "bob/alice/app"])
def test_the_own_namespace_is_the_first_component_exactly(name: str) -> None:
    assert repository_role(user("alice"), RepositoryFacts(name, True, False)) is None


def test_a_robot_has_no_namespace_of_its_own() -> None:
    # Even a robot whose name looked like a namespace gets nothing from it.
    assert repository_role(robot("acme"), RepositoryFacts("acme/app", True, False)) is None
    assert not may_administer_namespace(robot("acme"), "acme")


def test_anonymous_has_no_namespace() -> None:
    assert repository_role(ANONYMOUS, RepositoryFacts("/app", False, False)) is None
    assert not may_administer_namespace(ANONYMOUS, "")


# Organizations


def test_an_organization_owner_administers_its_namespace() -> None:
    owen = user("owen", owned_organizations=frozenset({"acme"}))
    assert repository_role(owen, PRIVATE) is Role.ADMIN
    assert repository_role(owen, MISSING) is Role.ADMIN
    assert repository_role(owen, RepositoryFacts("other/app", True, False)) is None
    assert may_administer_namespace(owen, "acme")
    assert not may_administer_namespace(owen, "other")


def test_owning_an_organization_means_nothing_for_a_robot() -> None:
    assert repository_role(robot(owned_organizations=frozenset({"acme"})), PRIVATE) is None


# Grants (a team's grants reach the policy merged into its members' grants)


def test_a_repository_grant_applies_to_exactly_that_repository() -> None:
    reader = user("rita", repository_grants={"acme/app": Role.PULL})
    assert repository_role(reader, PRIVATE) is Role.PULL
    for other in ("acme/app2", "acme/app/sub", "acme/ap", "other/app"):
        assert repository_role(reader, RepositoryFacts(other, True, False)) is None


def test_a_namespace_grant_applies_to_every_repository_of_the_namespace() -> None:
    team_member = user("tina", namespace_grants={"acme": Role.PUSH})
    assert repository_role(team_member, PRIVATE) is Role.PUSH
    assert repository_role(team_member, MISSING) is Role.PUSH
    assert repository_role(team_member, RepositoryFacts("acme-corp/app", True, False)) is None
    assert not may_administer_namespace(team_member, "acme")


def test_the_highest_applicable_rule_wins() -> None:
    both = user("dana", repository_grants={"acme/web": Role.DELETE}, namespace_grants={"acme": Role.PUSH})
    assert repository_role(both, PUBLIC) is Role.DELETE
    assert repository_role(both, PRIVATE) is Role.PUSH
    pusher = user("wes", repository_grants={"acme/web": Role.PUSH})
    assert repository_role(pusher, PUBLIC) is Role.PUSH


def test_a_robot_has_only_its_grants() -> None:
    ci = robot(repository_grants={"acme/app": Role.PUSH})
    assert repository_role(ci, PRIVATE) is Role.PUSH
    assert repository_role(ci, MISSING) is None
    assert repository_role(robot(namespace_grants={"acme": Role.DELETE}), MISSING) is Role.DELETE


def test_team_and_direct_grants_merge_to_the_highest_role() -> None:
    repositories, namespaces = _grant_maps(
        [
            ("repository", "acme/app", "pull"),
            ("repository", "acme/app", "delete"),  # through a team
            ("repository", "acme/app", "push"),
            ("namespace", "acme", "push"),
            ("namespace", "other", "admin"),
        ]
    )
    assert repositories == {"acme/app": Role.DELETE}
    assert namespaces == {"acme": Role.PUSH, "other": Role.ADMIN}


# Ceilings (personal access and robot tokens)


def test_a_token_ceiling_caps_every_rule() -> None:
    pat = user("alice", ceiling=Role.PULL)
    assert repository_role(pat, RepositoryFacts("alice/app", True, False)) is Role.PULL
    admin_pat = user("root", is_admin=True, ceiling=Role.PUSH)
    assert repository_role(admin_pat, PRIVATE) is Role.PUSH
    assert repository_role(robot(repository_grants={"acme/app": Role.ADMIN}, ceiling=Role.DELETE), PRIVATE) is (
        Role.DELETE
    )


def test_a_ceiling_grants_nothing_by_itself() -> None:
    assert repository_role(user("stranger", ceiling=Role.ADMIN), PRIVATE) is None
    assert repository_role(user("stranger", ceiling=Role.ADMIN), PUBLIC) is Role.PULL


def test_a_ceiling_below_admin_cannot_administer_a_namespace() -> None:
    assert not may_administer_namespace(user("alice", ceiling=Role.DELETE), "alice")
    assert may_administer_namespace(user("alice", ceiling=Role.ADMIN), "alice")
    assert not may_administer_namespace(user("root", is_admin=True, ceiling=Role.PULL), "acme")


# Principals and visibility


def test_audit_names() -> None:
    assert ANONYMOUS.audit_name == "anonymous" and ANONYMOUS.is_anonymous
    assert user("alice").audit_name == "user:alice"
    assert robot("acme+ci").audit_name == "robot:acme+ci"


def test_listings_show_what_the_principal_may_pull() -> None:
    assert AccountService.visibility(user("root", is_admin=True)) == Visibility(everything=True)
    assert AccountService.visibility(ANONYMOUS) == Visibility()
    member = user(
        "alice",
        owned_organizations=frozenset({"acme"}),
        namespace_grants={"team-ns": Role.PULL},
        repository_grants={"other/app": Role.PULL},
    )
    assert AccountService.visibility(member) == Visibility(
        namespaces=frozenset({"alice", "acme", "team-ns"}), repositories=frozenset({"other/app"})
    )
    # A robot sees its grants only, not a namespace named after it.
    ci = robot("acme+ci", repository_grants={"acme/app": Role.PUSH})
    assert AccountService.visibility(ci) == Visibility(namespaces=frozenset(), repositories=frozenset({"acme/app"}))


# Properties

names = st.from_regex(r"[a-z]{1,4}(/[a-z]{1,4}){0,2}", fullmatch=True)
roles = st.sampled_from(list(Role))
grants = st.dictionaries(names, roles, max_size=3)
principals = st.builds(
    Principal,
    kind=st.sampled_from(list(PrincipalKind)),
    name=st.from_regex(r"[a-z]{1,4}", fullmatch=True),
    is_admin=st.booleans(),
    owned_organizations=st.frozensets(st.from_regex(r"[a-z]{1,4}", fullmatch=True), max_size=2),
    repository_grants=grants,
    namespace_grants=grants,
    ceiling=st.none() | roles,
)
facts = st.builds(RepositoryFacts, name=names, exists=st.booleans(), public=st.booleans())


@given(principals, facts)
def test_no_rule_ever_lifts_a_role_above_the_ceiling(principal: Principal, repository: RepositoryFacts) -> None:
    role = repository_role(principal, repository)
    if principal.ceiling is not None and role is not None:
        assert role <= principal.ceiling


@given(facts)
def test_anonymous_gets_at_most_pull_and_only_on_existing_public_repositories(repository: RepositoryFacts) -> None:
    role = repository_role(ANONYMOUS, repository)
    assert role == (Role.PULL if repository.exists and repository.public else None)


@given(principals, facts)
def test_every_role_granted_is_backed_by_some_rule(principal: Principal, repository: RepositoryFacts) -> None:
    role = repository_role(principal, repository)
    if role is None or (repository.exists and repository.public and role is Role.PULL):
        return
    namespace = repository.name.split("/", 1)[0]
    assert (
        principal.is_admin
        or repository.name in principal.repository_grants
        or namespace in principal.namespace_grants
        or (principal.kind is PrincipalKind.USER and namespace in {principal.name, *principal.owned_organizations})
    )
