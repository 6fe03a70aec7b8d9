"""Reading the signed-in pages' form fields: bad values are refused with a message for the form."""

from __future__ import annotations

import pytest

from portside.api.web import form_values
from portside.auth.roles import Role
from portside.metadata.usage_store import RepositoryUsage
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.storage_usage import by_namespace, namespace_of


def refused(call: object, *args: object, **kwargs: object) -> RegistryError:
    assert callable(call)
    with pytest.raises(RegistryError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_text_is_stripped_and_absent_is_empty() -> None:
    assert form_values.text({"name": "  ci  "}, "name") == "ci"
    assert form_values.text({}, "name") == ""


def test_text_longer_than_the_limit_is_refused_not_cut() -> None:
    error = refused(form_values.text, {"name": "x" * 11}, "name", limit=10)
    assert error.kind is ErrorKind.REQUEST_INVALID
    assert "longer than 10" in str(error.message)


def test_required_names_the_missing_field() -> None:
    error = refused(form_values.required, {"name": "   "}, "name", "token name")
    assert "token name is required" in str(error.message)


def test_roles_are_the_four_labels() -> None:
    assert form_values.role({"role": "Push"}) is Role.PUSH
    assert form_values.role({"role": "admin"}) is Role.ADMIN
    assert refused(form_values.role, {"role": "owner"}).kind is ErrorKind.REQUEST_INVALID
    assert refused(form_values.role, {}).kind is ErrorKind.REQUEST_INVALID


def test_expiry_is_empty_for_never_or_a_whole_number() -> None:
    assert form_values.expiry_days({"expires_in_days": ""}) is None
    assert form_values.expiry_days({"expires_in_days": "30"}) == 30
    assert "whole number" in str(refused(form_values.expiry_days, {"expires_in_days": "1.5"}).message)


def test_visibility_is_public_or_private() -> None:
    assert form_values.visibility({"visibility": "PUBLIC"}) == "public"
    assert refused(form_values.visibility, {"visibility": "internal"}).kind is ErrorKind.REQUEST_INVALID


def test_checkbox_values() -> None:
    assert form_values.checkbox({"admin": "on"}, "admin")
    assert form_values.checkbox({"owner": "true"}, "owner")
    assert not form_values.checkbox({}, "admin")


def test_subject_joins_kind_and_name_or_takes_a_typed_subject() -> None:
    assert form_values.subject({"subject_kind": "team", "subject_name": "acme/devs"}) == "team:acme/devs"
    assert form_values.subject({"subject_kind": "user", "subject_name": "robot:acme+ci"}) == "robot:acme+ci"
    assert refused(form_values.subject, {"subject_kind": "group", "subject_name": "x"}).kind is (
        ErrorKind.REQUEST_INVALID
    )
    assert "who" in str(refused(form_values.subject, {"subject_kind": "user"}).message)


def test_identifiers_are_digits() -> None:
    assert form_values.identifier("12", "token") == 12
    assert refused(form_values.identifier, "1e3", "token").kind is ErrorKind.NAME_UNKNOWN


def test_storage_use_sums_repositories_per_namespace_largest_first() -> None:
    usage = [
        RepositoryUsage("acme/api", 3, 300, 1, 10, 2),
        RepositoryUsage("acme/web", 2, 200, 1, 20, 1),
        RepositoryUsage("alice/tool", 1, 900, 2, 5, 0),
        RepositoryUsage("empty", 0, 0, 0, 0, 0),
    ]
    namespaces = by_namespace(usage)
    assert [n.name for n in namespaces] == ["alice", "acme", "empty"]
    acme = namespaces[1]
    assert (acme.repositories, acme.blobs, acme.blob_bytes, acme.manifests, acme.manifest_bytes, acme.tags) == (
        2,
        5,
        500,
        2,
        30,
        3,
    )
    assert namespace_of("acme/team/app") == "acme"
