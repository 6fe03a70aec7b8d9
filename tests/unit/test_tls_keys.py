"""Encrypted TLS keys are decrypted by Portside, with a clear error for a wrong password."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from portside.tls import TLSKeyError, decrypt_key, server_key
from tests.support.tls import make_certificates


def test_an_encrypted_key_is_decrypted_to_unencrypted_pkcs8(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    plain = decrypt_key(files.server_key, files.key_password)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    serialization.load_pem_private_key(plain, None)


def test_a_wrong_password_names_the_file(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    with pytest.raises(TLSKeyError, match="cannot decrypt tls_key_file"):
        decrypt_key(files.server_key, "wrong")


def test_the_decrypted_copy_is_private_and_gone_afterwards(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    with server_key(files.server_key, files.key_password, tmp_path / "run") as copy:
        assert copy is not None and copy != files.server_key
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        serialization.load_pem_private_key(copy.read_bytes(), None)
    assert not copy.exists()


def test_without_a_password_the_key_file_is_used_as_it_is(tmp_path: Path) -> None:
    key = tmp_path / "plain.key"
    with server_key(key, None, tmp_path / "run") as used:
        assert used == key
