"""The error table and the JSON body every error leaves Portside in (distribution-spec "Error Codes")."""

from __future__ import annotations

import json
import re
from http import HTTPStatus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci.errors import ErrorKind, ErrorSpec, RegistryError

# distribution-spec v1.1, "Error Codes": "The code field MUST be one of the following".
OCI_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)
# The Docker Registry HTTP API V2 codes the OCI list grew out of; Docker clients know them.
DOCKER_REGISTRY_CODES = frozenset(
    {"PAGINATION_NUMBER_INVALID", "RANGE_INVALID", "TAG_INVALID", "UNAVAILABLE", "UNKNOWN", "MANIFEST_UNVERIFIED"}
)
# The management JSON API's own codes (/api/v1 only; registry clients never see them).
MANAGEMENT_CODES = frozenset({"REQUEST_INVALID", "CONFLICT", "VALIDATION_FAILED"})
MANAGEMENT_KINDS = frozenset({ErrorKind.REQUEST_INVALID, ErrorKind.CONFLICT, ErrorKind.VALIDATION_FAILED})

# The code and status each kind answers with.
EXPECTED: dict[ErrorKind, tuple[str | None, int]] = {
    ErrorKind.BLOB_UNKNOWN: ("BLOB_UNKNOWN", 404),
    ErrorKind.BLOB_UPLOAD_INVALID: ("BLOB_UPLOAD_INVALID", 400),
    ErrorKind.BLOB_UPLOAD_UNKNOWN: ("BLOB_UPLOAD_UNKNOWN", 404),
    ErrorKind.DIGEST_INVALID: ("DIGEST_INVALID", 400),
    ErrorKind.MANIFEST_BLOB_UNKNOWN: ("MANIFEST_BLOB_UNKNOWN", 400),
    ErrorKind.MANIFEST_INVALID: ("MANIFEST_INVALID", 400),
    ErrorKind.MANIFEST_UNSUPPORTED: ("MANIFEST_INVALID", 415),
    ErrorKind.MANIFEST_TOO_LARGE: ("SIZE_INVALID", 413),  # "SHOULD respond ... 413 Payload Too Large"
    ErrorKind.MANIFEST_UNKNOWN: ("MANIFEST_UNKNOWN", 404),
    ErrorKind.NAME_INVALID: ("NAME_INVALID", 400),
    ErrorKind.NAME_UNKNOWN: ("NAME_UNKNOWN", 404),
    ErrorKind.TAG_INVALID: ("TAG_INVALID", 400),
    ErrorKind.SIZE_INVALID: ("SIZE_INVALID", 400),
    ErrorKind.RANGE_INVALID: ("RANGE_INVALID", 416),  # out-of-order chunk "MUST respond with a 416"
    ErrorKind.PAGINATION_INVALID: ("PAGINATION_NUMBER_INVALID", 400),
    ErrorKind.UNAUTHORIZED: ("UNAUTHORIZED", 401),
    ErrorKind.DENIED: ("DENIED", 403),
    ErrorKind.UNSUPPORTED: ("UNSUPPORTED", 405),
    ErrorKind.TOO_MANY_REQUESTS: ("TOOMANYREQUESTS", 429),
    ErrorKind.NOT_FOUND: ("UNSUPPORTED", 404),
    ErrorKind.METHOD_NOT_ALLOWED: ("UNSUPPORTED", 405),
    ErrorKind.UNAVAILABLE: ("UNAVAILABLE", 503),
    ErrorKind.CLIENT_DISCONNECTED: ("BLOB_UPLOAD_INVALID", 400),
    ErrorKind.INTERNAL: ("UNKNOWN", 500),
    ErrorKind.STORAGE_FULL: ("UNKNOWN", 507),  # no code in the spec; 507 Insufficient Storage says it
    ErrorKind.REQUEST_INVALID: ("REQUEST_INVALID", 400),
    ErrorKind.CONFLICT: ("CONFLICT", 409),
    ErrorKind.VALIDATION_FAILED: ("VALIDATION_FAILED", 422),
}

kinds = st.sampled_from(list(ErrorKind))


def test_the_expected_table_covers_every_kind() -> None:
    assert set(EXPECTED) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind), ids=lambda k: k.name)
def test_every_kind_has_its_code_and_status(kind: ErrorKind) -> None:
    assert isinstance(kind.spec, ErrorSpec)
    code, status = EXPECTED[kind]
    assert kind.spec.status == status
    if code is not None:
        assert kind.spec.code == code


@pytest.mark.parametrize("kind", list(ErrorKind), ids=lambda k: k.name)
def test_every_code_is_upper_case_letters_and_underscores(kind: ErrorKind) -> None:
    assert re.fullmatch(r"[A-Z_]+", kind.spec.code)


@pytest.mark.parametrize("kind", list(ErrorKind), ids=lambda k: k.name)
def test_every_status_is_a_real_client_or_server_error(kind: ErrorKind) -> None:
    assert 400 <= kind.spec.status < 600
    HTTPStatus(kind.spec.status)


@pytest.mark.parametrize("kind", list(ErrorKind), ids=lambda k: k.name)
def test_every_kind_has_a_default_message(kind: ErrorKind) -> None:
    assert kind.spec.message.strip()


@pytest.mark.parametrize(
    "kind",
    [kind for kind in ErrorKind],
    ids=lambda k: k.name,
)
def test_every_code_is_one_the_distribution_spec_or_docker_registry_defines(kind: ErrorKind) -> None:
    allowed = MANAGEMENT_CODES if kind in MANAGEMENT_KINDS else OCI_CODES | DOCKER_REGISTRY_CODES
    assert kind.spec.code in allowed


def test_no_kind_is_an_alias_of_another() -> None:
    # Enum members with equal values silently become aliases; each row must stay distinct.
    assert len(ErrorKind.__members__) == len(list(ErrorKind))


# --- RegistryError -----------------------------------------------------------------------


def test_error_without_message_uses_the_kinds_default() -> None:
    error = RegistryError(ErrorKind.BLOB_UNKNOWN)
    assert error.message == "blob unknown to registry"
    assert error.detail is None
    assert error.headers == {}
    assert error.status == 404
    assert str(error) == "BLOB_UNKNOWN: blob unknown to registry"


def test_error_with_message_detail_and_headers_keeps_them() -> None:
    error = RegistryError(ErrorKind.RANGE_INVALID, "chunk out of order", {"offset": 10}, {"Range": "0-9"})
    assert error.message == "chunk out of order"
    assert error.detail == {"offset": 10}
    assert error.headers == {"Range": "0-9"}
    assert error.status == 416
    assert str(error) == "RANGE_INVALID: chunk out of order"


def test_body_is_the_spec_errors_envelope() -> None:
    body = RegistryError(ErrorKind.NAME_UNKNOWN, "no such repository", {"name": "a/b"}).body()
    assert isinstance(body, bytes)
    assert json.loads(body) == {
        "errors": [{"code": "NAME_UNKNOWN", "message": "no such repository", "detail": {"name": "a/b"}}]
    }


def test_body_without_detail_has_an_empty_detail_object() -> None:
    assert json.loads(RegistryError(ErrorKind.DENIED).body()) == {
        "errors": [{"code": "DENIED", "message": "requested access to the resource is denied", "detail": {}}]
    }


@pytest.mark.parametrize("detail", ["text", ["a", 1], 0, False, {"nested": {"x": [1, 2]}}])
def test_body_passes_any_json_detail_through(detail: object) -> None:
    (entry,) = json.loads(RegistryError(ErrorKind.MANIFEST_INVALID, detail=detail).body())["errors"]
    assert entry["detail"] == detail


@settings(deadline=None)
@given(
    kind=kinds,
    message=st.one_of(st.none(), st.text(min_size=1)),
    detail=st.none() | st.dictionaries(st.text(), st.text()),
)
def test_body_of_any_error_has_exactly_code_message_and_detail(
    kind: ErrorKind, message: str | None, detail: dict[str, str] | None
) -> None:
    document = json.loads(RegistryError(kind, message, detail).body())
    assert list(document) == ["errors"]
    (entry,) = document["errors"]
    assert set(entry) == {"code", "message", "detail"}
    assert entry["code"] == kind.spec.code
    assert entry["message"] == (message or kind.spec.message)
    assert entry["detail"] == (detail if detail is not None else {})
