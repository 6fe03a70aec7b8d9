"""Parsing of ``Authorization`` headers. Pure."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class BasicCredentials:
    """A username and password from ``Authorization: Basic``."""

    username: str
    password: str


def parse_authorization(header: str | None) -> tuple[str, str] | None:
    """``(scheme, parameters)`` with the scheme lower-cased, or ``None`` without a header."""
    if not header:
        return None
    scheme, _, parameters = header.strip().partition(" ")
    return scheme.lower(), parameters.strip()


def parse_basic(parameters: str) -> BasicCredentials | None:
    """Decode Basic credentials; ``None`` if they are malformed."""
    try:
        decoded = base64.b64decode(parameters, validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 inside
        return None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        return None
    return BasicCredentials(username, password)


def is_empty_basic(parameters: str) -> bool:
    """True for ``Basic Og==``: an empty username and password.

    containers/image (skopeo, podman, buildah) sends that when it has no credentials for
    a registry that challenged with Basic; it means "anonymous", not a failed login.
    """
    try:
        return base64.b64decode(parameters, validate=True) == b":"
    except ValueError:
        return False
