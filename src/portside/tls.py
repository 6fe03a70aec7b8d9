"""The TLS key handed to the server.

Granian (2.8) reads the key file in each worker and cannot decrypt every encrypted PEM key
(an encrypted PKCS#8 EC key makes its workers panic). With ``tls_key_password`` set,
Portside therefore decrypts the key itself, with ``cryptography``, and gives Granian an
unencrypted copy that lives in memory (``/dev/shm``, a tmpfs) with mode 0600 for as long as
the server runs: no more exposed than the key in the server's own memory, and never on disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization

# Where the decrypted copy goes: memory-backed where the system has it.
MEMORY_DIRS = (Path("/dev/shm"),)  # noqa: S108 - mkstemp below makes a private 0600 file


class TLSKeyError(ValueError):
    """The key cannot be read or decrypted."""


def decrypt_key(key_file: Path, password: str) -> bytes:
    """The unencrypted PKCS#8 PEM of an encrypted PEM key; ``TLSKeyError`` names what is wrong."""
    try:
        data = key_file.read_bytes()
    except OSError as exc:
        raise TLSKeyError(f"cannot read tls_key_file {key_file}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password.encode())
    except (ValueError, TypeError) as exc:
        raise TLSKeyError(f"cannot decrypt tls_key_file {key_file} with tls_key_password: {exc}") from exc
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@contextlib.contextmanager
def server_key(key_file: Path | None, password: str | None, fallback_dir: Path) -> Iterator[Path | None]:
    """The key path to give Granian while the server runs (a decrypted, private copy with a password)."""
    if key_file is None or password is None:
        yield key_file
        return
    plain = decrypt_key(key_file, password)
    directory = next((d for d in MEMORY_DIRS if d.is_dir() and os.access(d, os.W_OK)), fallback_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600.
    handle, name = tempfile.mkstemp(prefix="portside-tls-", suffix=".key", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(plain)
        yield path
    finally:
        path.unlink(missing_ok=True)
