"""Parsing ``Authorization`` headers: the scheme, and Basic credentials."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.auth.credentials import BasicCredentials, is_empty_basic, parse_authorization, parse_basic


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Basic YWxpY2U6cHc=", ("basic", "YWxpY2U6cHc=")),
        ("BASIC YWxpY2U6cHc=", ("basic", "YWxpY2U6cHc=")),
        ("Bearer eyJ.a.b", ("bearer", "eyJ.a.b")),
        ("  bearer   token  ", ("bearer", "token")),
        ("Bearer", ("bearer", "")),
        ("Negotiate", ("negotiate", "")),
    ],
)
def test_parse_authorization(header: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_authorization(header) == expected


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        ("alice:secret", BasicCredentials("alice", "secret")),
        ("alice:pa:ss:word", BasicCredentials("alice", "pa:ss:word")),
        ("alice:", BasicCredentials("alice", "")),
        ("acme+ci:pst_abc", BasicCredentials("acme+ci", "pst_abc")),
        ("jürgen:pässwörd", BasicCredentials("jürgen", "pässwörd")),
    ],
)
def test_parse_basic(decoded: str, expected: BasicCredentials) -> None:
    assert parse_basic(b64(decoded)) == expected


@pytest.mark.parametrize(
    "parameters",
    [
        b64("no-separator"),
        b64(":password-without-user"),
        b64(":"),
        "not base64!",
        "YWxpY2U6cHc",  # padding missing
        base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "",
    ],
)
def test_malformed_basic_credentials_are_none(parameters: str) -> None:
    assert parse_basic(parameters) is None


def test_empty_basic_credentials_are_recognised_as_anonymous() -> None:
    # containers/image sends "Basic Og==" (":" encoded) when it has no credentials.
    assert is_empty_basic("Og==")
    assert is_empty_basic(b64(":"))
    for other in (b64("a:"), b64(":b"), b64("::"), "", "Og", "%%%"):
        assert not is_empty_basic(other)


@given(
    st.text(min_size=1).filter(lambda name: ":" not in name),
    st.text(),
)
def test_basic_credentials_round_trip(username: str, password: str) -> None:
    assert parse_basic(b64(f"{username}:{password}")) == BasicCredentials(username, password)


@given(st.text(max_size=80))
def test_parse_basic_never_raises(parameters: str) -> None:
    parse_basic(parameters)
    is_empty_basic(parameters)
