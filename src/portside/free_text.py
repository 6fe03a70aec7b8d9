"""Text people write (descriptions, READMEs): checked the same way wherever it is stored."""

from __future__ import annotations

from portside.oci.errors import ErrorKind, RegistryError

# The longest description: of a repository (written, or taken from its image) or of a robot.
MAX_DESCRIPTION = 4096


def check_free_text(value: str | None, what: str, max_length: int = MAX_DESCRIPTION) -> None:
    """``REQUEST_INVALID`` if ``value`` is longer than ``max_length`` characters or holds a NUL
    (which PostgreSQL cannot store in text); ``None`` passes."""
    if value is None:
        return
    if len(value) > max_length:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{what} is longer than {max_length} characters")
    if "\x00" in value:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{what} may not contain NUL characters")
