"""Parsing of ``Authorization`` headers. Pure."""

from __future__ import annotations

import base64
import binascii
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
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        return None
    return BasicCredentials(username, password)
