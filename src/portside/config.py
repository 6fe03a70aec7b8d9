"""Typed settings: defaults, then a TOML file, then ``PORTSIDE_*`` environment variables, then flags."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, SerializationInfo, field_serializer, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MIB = 1024 * 1024

# Serialisation context under which secrets are written in clear (worker hand-off only).
REVEAL_SECRETS = {"reveal_secrets": True}


class Settings(BaseSettings):
    """Every setting of a Portside server. Environment variables are ``PORTSIDE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PORTSIDE_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(5000, ge=0, le=65535, description="TCP port to listen on.")
    data_dir: Path = Field(Path("data"), description="Where blobs, uploads, the SQLite database and keys live.")
    workers: int = Field(2, ge=1, le=64, description="Server worker processes; they share the data dir safely.")
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; default: SQLite file `portside.db` in the data dir."
    )
    storage_driver: Literal["filesystem", "s3"] = Field(
        "filesystem",
        description="Where blob bytes are kept: `filesystem` (the data dir) or `s3` (an S3-compatible bucket).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint, e.g. `http://127.0.0.1:9000` for MinIO; default: AWS S3 for the region."
    )
    s3_bucket: str | None = Field(None, description="Bucket for blobs and uploads; required with the `s3` driver.")
    s3_region: str = Field("us-east-1", description="Region of the bucket (used for request signing).")
    s3_access_key_id: str | None = Field(
        None, description="Access key id; default: the AWS credential chain (AWS_* variables, profile, instance role)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret access key, paired with `s3_access_key_id`; kept out of logs and reprs."
    )
    s3_prefix: str = Field("", description="Key prefix inside the bucket, so that several registries can share one.")
    s3_redirect_blobs: bool = Field(
        False, description="Answer blob downloads with a redirect to a presigned S3 URL instead of relaying the bytes."
    )
    auto_migrate: bool = Field(True, description="Bring the database schema up to date at start.")
    upload_expiry_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="An upload session with no activity for this long is removed."
    )
    upload_purge_interval_seconds: int = Field(
        3600, ge=1, description="How often expired upload sessions are looked for."
    )
    max_manifest_bytes: int = Field(4 * MIB, ge=1024, description="Largest manifest accepted (413 above).")
    delete_enabled: bool = Field(True, description="Allow DELETE of blobs, manifests and tags.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Server log level.")
    node_name: str = Field(
        default_factory=lambda: socket.gethostname(),
        description="This node's name in job records and logs (default: the host name).",
    )
    auth: Literal["none", "basic", "token"] = Field(
        "none",
        description="none: an open registry (as Distribution by default); basic: HTTP Basic on every request; "
        "token: Docker token authentication with the built-in token server at /token.",
    )
    keys_dir: Path | None = Field(
        None,
        description="Token signing keys (default: data_dir/keys). Nodes of a cluster must share it, "
        "e.g. as a mounted secret.",
    )
    token_service: str = Field("portside", description="The `service` (JWT audience) tokens are issued for.")
    token_issuer: str = Field("portside", description="The `iss` claim of issued tokens.")
    token_realm: str | None = Field(
        None, description="Absolute URL of the token endpoint; default: /token on the URL the client used."
    )
    token_lifetime_seconds: int = Field(300, ge=30, le=86400, description="How long an access token is valid.")
    refresh_token_days: int = Field(30, ge=1, description="How long an OAuth2 refresh token is valid.")
    default_visibility: Literal["private", "public"] = Field(
        "private", description="Visibility of a repository created by a push."
    )
    admin_username: str | None = Field(
        None, description="At start, create this administrator if no user exists yet (with admin_password)."
    )
    admin_password: SecretStr | None = Field(None, description="Password of the first administrator (admin_username).")
    login_failure_window_seconds: int = Field(300, ge=1, description="Window in which failed logins are counted.")
    login_failures_per_account: int = Field(10, ge=1, description="Failed logins per account per window.")
    login_failures_per_address: int = Field(30, ge=1, description="Failed logins per client address per window.")
    tag_history_days: int = Field(
        14,
        ge=1,
        description="How long tag history is kept usable: a tag can be restored to any digest it had within "
        "this window, and garbage collection keeps those manifests.",
    )
    default_namespace_quota_bytes: int | None = Field(
        None,
        ge=0,
        description="Storage quota of a namespace without a quota of its own; none: unlimited.",
    )

    gc_grace_seconds: int = Field(
        3600,
        ge=1,
        description="Garbage collection spares blobs, links and manifests younger than this (and blobs an "
        "upload or mount claimed within it), so pushes in progress finish safely.",
    )
    gc_interval_seconds: int = Field(
        86400, ge=0, description="How often garbage collection runs on its own (0: only on demand)."
    )
    retention_interval_seconds: int = Field(
        3600, ge=0, description="How often retention policies are applied (0: only on demand)."
    )

    @field_serializer("s3_secret_access_key", "admin_password", when_used="json")
    def _secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        # Masked wherever settings are shown; revealed only for the hand-off of `portside serve`
        # to its own worker processes (see REVEAL_SECRETS).
        if value is None:
            return None
        return value.get_secret_value() if (info.context or {}).get("reveal_secrets") else "**********"

    @model_validator(mode="after")
    def _check_s3(self) -> Settings:
        if self.storage_driver == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket is required when storage_driver is 's3'")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("s3_access_key_id and s3_secret_access_key go together")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) win over the environment, which wins over the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'portside.db').resolve()}"

    @property
    def resolved_keys_dir(self) -> Path:
        """Where the token signing keys are."""
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"

    @property
    def blob_root(self) -> Path:
        """Root directory of the filesystem blob driver."""
        return self.data_dir / "storage"


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings from an optional TOML file, the environment and explicit overrides."""
    flags = {key: value for key, value in overrides.items() if value is not None}
    if config_file is None:
        return Settings(**flags)  # type: ignore[arg-type]
    if not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    file_bound = type(
        "FileSettings",
        (Settings,),
        {"model_config": SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})},
    )
    settings: Settings = file_bound(**flags)
    return Settings.model_validate(settings.model_dump())
