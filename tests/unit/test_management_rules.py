"""The management services' pure rules: who counts as what, subjects, token names and expiry, errors."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from portside.api.management import build_management_api
from portside.api.management.errors import validation_detail
from portside.auth.accounts import InvalidName
from portside.auth.management.audit import as_aware
from portside.auth.management.grants import Subject, parse_subject
from portside.auth.management.guards import (
    BASIC_CHALLENGE,
    Caller,
    has_full_authority,
    is_site_admin,
    require_identity,
    require_namespace_admin,
    require_site_admin,
    require_user,
    store_errors,
)
from portside.auth.management.tokens import token_expiry, token_name
from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind
from portside.auth.roles import Role
from portside.metadata.account_errors import Conflict, NotFound
from portside.oci.errors import ErrorKind, RegistryError

ALICE = Principal(PrincipalKind.USER, "alice", 1, owned_organizations=frozenset({"acme"}))
ADMIN = Principal(PrincipalKind.USER, "root", 2, is_admin=True)
ROBOT = Principal(PrincipalKind.ROBOT, "acme+ci", 3)


def caller(principal: Principal) -> Caller:
    return Caller(principal, "127.0.0.1")


def with_ceiling(principal: Principal, ceiling: Role) -> Principal:
    return Principal(
        principal.kind,
        principal.name,
        principal.id,
        principal.is_admin,
        principal.owned_organizations,
        ceiling=ceiling,
    )


def kind_of(error: pytest.ExceptionInfo[RegistryError]) -> ErrorKind:
    return error.value.kind


# Authority


@pytest.mark.parametrize(
    ("ceiling", "full"), [(None, True), (Role.PULL, False), (Role.DELETE, False), (Role.ADMIN, True)]
)
def test_only_password_logins_and_admin_role_tokens_have_full_authority(ceiling: Role | None, full: bool) -> None:
    principal = ALICE if ceiling is None else with_ceiling(ALICE, ceiling)
    assert has_full_authority(principal) is full


def test_a_site_admin_with_a_pull_token_is_not_a_site_admin() -> None:
    assert is_site_admin(ADMIN)
    assert not is_site_admin(with_ceiling(ADMIN, Role.PULL))
    assert not is_site_admin(ALICE)


def test_anonymous_callers_are_asked_for_basic_credentials() -> None:
    with pytest.raises(RegistryError) as error:
        require_identity(caller(ANONYMOUS))
    assert kind_of(error) is ErrorKind.UNAUTHORIZED
    assert error.value.headers == BASIC_CHALLENGE == {"WWW-Authenticate": 'Basic realm="portside"'}


@pytest.mark.parametrize("principal", [ALICE, ROBOT, with_ceiling(ADMIN, Role.PUSH)])
def test_site_administration_is_denied_to_everyone_else(principal: Principal) -> None:
    with pytest.raises(RegistryError) as error:
        require_site_admin(caller(principal))
    assert kind_of(error) is ErrorKind.DENIED


def test_robots_and_weak_tokens_cannot_act_as_users() -> None:
    assert require_user(caller(ALICE)) is ALICE
    assert require_user(caller(with_ceiling(ALICE, Role.PULL)), full_authority=False).name == "alice"
    for principal in (ROBOT, with_ceiling(ALICE, Role.PULL)):
        with pytest.raises(RegistryError) as error:
            require_user(caller(principal))
        assert kind_of(error) is ErrorKind.DENIED


@pytest.mark.parametrize(("principal", "namespace"), [(ALICE, "alice"), (ALICE, "acme"), (ADMIN, "anything")])
def test_namespace_admins_are_the_policys(principal: Principal, namespace: str) -> None:
    assert require_namespace_admin(caller(principal), namespace) is principal


@pytest.mark.parametrize(
    ("principal", "namespace"), [(ALICE, "bob"), (ROBOT, "acme"), (with_ceiling(ALICE, Role.PUSH), "alice")]
)
def test_namespace_administration_is_denied_to_others(principal: Principal, namespace: str) -> None:
    with pytest.raises(RegistryError) as error:
        require_namespace_admin(caller(principal), namespace)
    assert kind_of(error) is ErrorKind.DENIED


# Subjects


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("user:alice", Subject("user", "alice")),
        ("team:acme/devs", Subject("team", "acme/devs")),
        ("robot:acme+ci", Subject("robot", "acme+ci")),
        ("robot:a.b+c-d", Subject("robot", "a.b+c-d")),
    ],
)
def test_subjects_name_a_user_a_team_or_a_robot(text: str, subject: Subject) -> None:
    assert parse_subject(text) == subject
    assert str(subject) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "user:",
        "user:Alice",
        "user:acme/devs",
        "team:acme",
        "team:acme/devs/x",
        "team:/devs",
        "robot:acme",
        "robot:acme+ci+x",
        "group:acme/devs",
        "USER:alice",
    ],
)
def test_anything_else_is_not_a_subject(text: str) -> None:
    with pytest.raises(RegistryError) as error:
        parse_subject(text)
    assert kind_of(error) is ErrorKind.REQUEST_INVALID
    assert error.value.detail == {"subject": text}


# Tokens


def test_token_expiry_is_counted_in_days_from_now() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert token_expiry(now, None) is None
    assert token_expiry(now, 1) == now + timedelta(days=1)
    assert token_expiry(now, 3650) == now + timedelta(days=3650)


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_token_expiry_outside_one_to_3650_days_is_refused(days: int) -> None:
    with pytest.raises(RegistryError) as error:
        token_expiry(datetime.now(UTC), days)
    assert kind_of(error) is ErrorKind.REQUEST_INVALID


def test_token_names_are_trimmed_and_bounded() -> None:
    assert token_name("  laptop ") == "laptop"
    assert token_name("x" * 128) == "x" * 128
    for bad in ("", "   ", "x" * 129):
        with pytest.raises(RegistryError):
            token_name(bad)


# Errors


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        (Conflict("taken"), ErrorKind.CONFLICT),
        (NotFound("no user 'x'"), ErrorKind.NAME_UNKNOWN),
        (InvalidName("bad name"), ErrorKind.NAME_INVALID),
        (ValueError("passwords must have at least 8 characters"), ErrorKind.REQUEST_INVALID),
    ],
)
def test_store_errors_become_rows_of_the_error_table(raised: Exception, kind: ErrorKind) -> None:
    with pytest.raises(RegistryError) as error, store_errors():
        raise raised
    assert kind_of(error) is kind
    assert error.value.message == str(raised)


def test_validation_errors_never_echo_the_input() -> None:
    errors = [{"loc": ("body", "password"), "msg": "Input should be a valid string", "input": 5, "type": "x"}]
    assert validation_detail(errors) == [
        {"location": ["body", "password"], "message": "Input should be a valid string"}
    ]


def test_audit_times_without_a_zone_are_utc() -> None:
    naive = datetime(2025, 1, 1, 12)
    assert as_aware(naive) == datetime(2025, 1, 1, 12, tzinfo=UTC)
    zoned = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert as_aware(zoned) is zoned
    assert as_aware(None) is None


# The schema


def test_every_operation_has_a_unique_id_named_after_its_handler() -> None:
    api = build_management_api()
    operations = [op for path in api.openapi()["paths"].values() for op in path.values()]
    ids = Counter(op["operationId"] for op in operations)
    assert ids and max(ids.values()) == 1
    assert "create_user" in ids and "read_audit_log" in ids
