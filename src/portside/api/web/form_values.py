"""Reading the values of the signed-in pages' HTML forms. Pure: no I/O.

Bad values raise ``RegistryError(REQUEST_INVALID)`` with a message fit to show next to the form;
what makes a name, a password or a grant valid stays the management services' business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from portside.auth.roles import Role
from portside.digits import parse_digits
from portside.metadata.records import MAX_ROW_ID
from portside.oci.errors import ErrorKind, RegistryError

ROLE_CHOICES = ("pull", "push", "delete", "admin")
VISIBILITY_CHOICES = ("public", "private")
SUBJECT_KINDS = ("user", "team", "robot")
# Longest text accepted from one form field; longer input is refused, never cut short.
MAX_FIELD = 1024
MAX_LONG_FIELD = 256 * 1024


def text(form: Mapping[str, object], name: str, *, limit: int = MAX_FIELD) -> str:
    """A text field, stripped of surrounding blanks ("" when absent)."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{name} must be text")
    if len(value) > limit:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{name} is longer than {limit} characters")
    return value.strip()


def required(form: Mapping[str, object], name: str, label: str) -> str:
    """A text field that must not be empty."""
    value = text(form, name)
    if not value:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{label} is required")
    return value


def checkbox(form: Mapping[str, object], name: str) -> bool:
    """True when a checkbox (or a hidden "true"/"on" field) was sent."""
    return text(form, name).lower() in {"on", "true", "1", "yes"}


def role(form: Mapping[str, object], name: str = "role") -> Role:
    """A role picked from pull, push, delete or admin."""
    value = text(form, name).lower()
    if value not in ROLE_CHOICES:
        raise RegistryError(ErrorKind.REQUEST_INVALID, "choose a role: pull, push, delete or admin")
    return Role.parse(value)


def expiry_days(form: Mapping[str, object], name: str = "expires_in_days") -> int | None:
    """Days until a token expires; empty means never (the service checks the range)."""
    value = text(form, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise RegistryError(ErrorKind.REQUEST_INVALID, "expiry must be a whole number of days, or empty") from None


def visibility(form: Mapping[str, object], name: str = "visibility") -> str:
    """public or private."""
    value = text(form, name).lower()
    if value not in VISIBILITY_CHOICES:
        raise RegistryError(ErrorKind.REQUEST_INVALID, "visibility is public or private")
    return value


def subject(form: Mapping[str, object]) -> str:
    """A grant subject from a kind picker and a name (``team`` + ``acme/devs`` -> ``team:acme/devs``).

    A name typed with its kind (``robot:acme+ci``) is taken as it is; the grant service parses it.
    """
    kind = text(form, "subject_kind").lower()
    name = required(form, "subject_name", "who (a user, team or robot name)")
    if ":" in name:
        return name
    if kind not in SUBJECT_KINDS:
        raise RegistryError(ErrorKind.REQUEST_INVALID, "choose whether the grant is for a user, a team or a robot")
    return f"{kind}:{name}"


def identifier(value: str, label: str) -> int:
    """A row id from a URL path or a form; ``NAME_UNKNOWN`` for anything no row can have."""
    number = parse_digits(value)
    if number is None or not 1 <= number <= MAX_ROW_ID:
        raise RegistryError(ErrorKind.NAME_UNKNOWN, f"no {label} {value!r}")
    return number


# Units a size may be typed in (binary and decimal, as `docker system df` and Harbor show them).
SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]*)$")


def whole_number(form: Mapping[str, object], name: str, label: str) -> int | None:
    """A whole number of zero or more; empty means not given."""
    value = text(form, name)
    if not value:
        return None
    number = parse_digits(value)
    if number is None or len(value) > 12:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{label} must be a whole number (0 or more), or empty")
    return number


def days(form: Mapping[str, object], name: str, label: str) -> timedelta | None:
    """A duration typed as a whole number of days; empty means not given."""
    count = whole_number(form, name, label)
    if count is not None and count > 36_500:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{label} is at most 36500 days")
    return None if count is None else timedelta(days=count)


def byte_size(form: Mapping[str, object], name: str, label: str) -> int | None:
    """A size in bytes, typed as ``1073741824``, ``500 MB`` or ``10 GiB``; empty means none."""
    value = text(form, name).lower().replace(",", "")
    if not value:
        return None
    found = _SIZE.match(value)
    if found is None or found.group(2) not in SIZE_UNITS:
        raise RegistryError(
            ErrorKind.REQUEST_INVALID, f"{label} is a number of bytes, or a size such as 500 MB or 10 GiB"
        )
    size = Decimal(found.group(1)) * SIZE_UNITS[found.group(2)]
    if size > 2**62:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{label} is too large")
    return int(size)
