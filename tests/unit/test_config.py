"""Settings: defaults, then a TOML file, then ``PORTSIDE_*`` environment variables, then flags."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from portside.config import MIB, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No PORTSIDE_* variable from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("PORTSIDE_"):
            monkeypatch.delenv(name)
    yield


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portside.toml"
    path.write_text(text)
    return path


# --- defaults ----------------------------------------------------------------------------


def test_defaults_serve_on_loopback_with_two_workers_and_local_storage() -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.data_dir == Path("data")
    assert settings.workers == 2
    assert settings.database_url is None
    assert settings.storage_driver == "filesystem"
    assert settings.auto_migrate is True
    assert settings.upload_expiry_seconds == 7 * 24 * 3600
    assert settings.upload_purge_interval_seconds == 3600
    assert settings.max_manifest_bytes == 4 * MIB
    assert settings.delete_enabled is True
    assert settings.log_level == "info"


def test_default_database_is_sqlite_inside_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'portside.db'}"


def test_explicit_database_url_is_used_as_given() -> None:
    url = "postgresql+asyncpg://u:p@db/portside"
    assert load_settings(database_url=url).resolved_database_url == url


def test_blobs_live_under_storage_in_the_data_dir(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).blob_root == tmp_path / "storage"


# --- environment -------------------------------------------------------------------------


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORTSIDE_HOST", "0.0.0.0")
    monkeypatch.setenv("PORTSIDE_PORT", "6000")
    monkeypatch.setenv("PORTSIDE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTSIDE_WORKERS", "4")
    monkeypatch.setenv("PORTSIDE_DELETE_ENABLED", "false")
    monkeypatch.setenv("PORTSIDE_LOG_LEVEL", "debug")
    monkeypatch.setenv("PORTSIDE_DATABASE_URL", "sqlite+aiosqlite:///x.db")
    settings = load_settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == 6000
    assert settings.data_dir == tmp_path
    assert settings.workers == 4
    assert settings.delete_enabled is False
    assert settings.log_level == "debug"
    assert settings.database_url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTSIDE_PORT", "not-a-port"),
        ("PORTSIDE_PORT", "65536"),
        ("PORTSIDE_WORKERS", "0"),
        ("PORTSIDE_LOG_LEVEL", "loud"),
        ("PORTSIDE_STORAGE_DRIVER", "s3"),
        ("PORTSIDE_UPLOAD_EXPIRY_SECONDS", "59"),
        ("PORTSIDE_MAX_MANIFEST_BYTES", "1023"),
    ],
)
def test_invalid_environment_value_is_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        load_settings()


def test_unrelated_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("HOST", "example.com")
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)


# --- flags -------------------------------------------------------------------------------


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_PORT", "6000")
    monkeypatch.setenv("PORTSIDE_HOST", "0.0.0.0")
    settings = load_settings(port=7000)
    assert settings.port == 7000
    assert settings.host == "0.0.0.0"


def test_flags_left_unset_by_the_cli_do_not_mask_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_PORT", "6000")
    assert load_settings(port=None, host=None, data_dir=None, workers=None).port == 6000


def test_unknown_flag_is_rejected() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        load_settings(bogus=1)


def test_invalid_flag_value_is_rejected() -> None:
    with pytest.raises(ValidationError):
        load_settings(workers=65)


def test_settings_class_alone_reads_no_config_file() -> None:
    assert not Settings.model_config.get("toml_file")


# --- TOML file ---------------------------------------------------------------------------


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")


def test_config_file_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path)


def test_config_file_values_override_defaults(tmp_path: Path) -> None:
    path = write_toml(tmp_path, f'host = "0.0.0.0"\nport = 7000\nworkers = 3\ndata_dir = "{tmp_path}"\n')
    settings = load_settings(path)
    assert settings.host == "0.0.0.0"
    assert settings.port == 7000
    assert settings.workers == 3
    assert settings.data_dir == tmp_path
    assert settings.log_level == "info"
    assert isinstance(settings, Settings)


def test_environment_overrides_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, 'host = "0.0.0.0"\nport = 7000\n')
    monkeypatch.setenv("PORTSIDE_PORT", "6000")
    settings = load_settings(path)
    assert settings.port == 6000
    assert settings.host == "0.0.0.0"


def test_flags_override_config_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, "port = 7000\nworkers = 3\n")
    monkeypatch.setenv("PORTSIDE_PORT", "6000")
    settings = load_settings(path, port=5555, workers=None)
    assert settings.port == 5555
    assert settings.workers == 3


def test_unknown_key_in_config_file_is_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 7000\nbogus = 1\n")
    with pytest.raises(ValidationError, match="bogus"):
        load_settings(path)


def test_invalid_value_in_config_file_is_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 70000\n")
    with pytest.raises(ValidationError):
        load_settings(path)


def test_secrets_are_masked_when_shown_and_revealed_only_for_the_worker_hand_off() -> None:
    from portside.config import REVEAL_SECRETS, Settings

    settings = Settings(
        storage_driver="s3",
        s3_bucket="b",
        s3_access_key_id="key",
        s3_secret_access_key="top-secret",
        admin_password="admin-secret",
    )
    shown = settings.model_dump_json()
    assert "top-secret" not in shown
    assert "admin-secret" not in shown
    handed_off = Settings.model_validate_json(settings.model_dump_json(context=REVEAL_SECRETS))
    assert handed_off.s3_secret_access_key is not None
    assert handed_off.s3_secret_access_key.get_secret_value() == "top-secret"
    assert handed_off.admin_password is not None
    assert handed_off.admin_password.get_secret_value() == "admin-secret"


# --- observability, TLS, proxies, rate limits ----------------------------------------------


def test_operations_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.trusted_proxies == ["127.0.0.1", "::1"]
    assert settings.pull_rate_limit is False
    assert (settings.pull_limit_anonymous, settings.pull_limit_authenticated) == (100, 200)
    assert settings.pull_limit_window_seconds == 21600
    assert settings.tls_cert_file is None and settings.metrics_enabled and settings.access_log


def test_tls_certificate_and_key_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="tls_cert_file and tls_key_file"):
        Settings(tls_cert_file=tmp_path / "cert.pem")


def test_a_bad_trusted_proxy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_TRUSTED_PROXIES", '["10.0.0.0/8", "proxy.example"]')
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings()


def test_the_tls_key_password_is_masked_except_for_the_worker_hand_off(tmp_path: Path) -> None:
    settings = Settings(tls_cert_file=tmp_path / "c.pem", tls_key_file=tmp_path / "k.pem", tls_key_password="s3cret")
    assert "s3cret" not in settings.model_dump_json()
    from portside.config import REVEAL_SECRETS

    assert "s3cret" in settings.model_dump_json(context=REVEAL_SECRETS)
