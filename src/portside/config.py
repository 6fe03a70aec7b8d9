"""Typed settings: defaults, then a TOML file, then ``PORTSIDE_*`` environment variables, then flags."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, SerializationInfo, field_serializer, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from portside.observability.forwarded import TrustedProxies
from portside.oci.names import NAME_RE

MIB = 1024 * 1024

# Serialisation context under which secrets are written in clear (worker hand-off only).
REVEAL_SECRETS = {"reveal_secrets": True}
# Where `portside serve` hands its resolved settings (secrets included) to the serving process and
# its workers.
SETTINGS_ENV = "PORTSIDE_RESOLVED_SETTINGS"


def _reveal(value: SecretStr | None, info: SerializationInfo) -> str | None:
    # Masked wherever settings are shown; revealed only for the hand-off of `portside serve`
    # to its own worker processes (see REVEAL_SECRETS).
    if value is None:
        return None
    return value.get_secret_value() if (info.context or {}).get("reveal_secrets") else "**********"


class MirrorSettings(BaseModel):
    """One pull-through cache: a local namespace (or the whole registry) mirroring an upstream registry."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(
        "",
        description="Local namespace that mirrors the upstream (`hub` serves upstream `library/alpine` as "
        "`hub/library/alpine`); empty: every repository not stored locally (a Docker `registry-mirrors` target).",
    )
    upstream: str = Field(description="Base URL of the upstream registry, e.g. `https://registry-1.docker.io`.")
    host: str | None = Field(
        None,
        description="Registry host name containerd names in `?ns=` (e.g. `docker.io`); default: the upstream's host.",
    )
    username: str | None = Field(None, description="Upstream user name (Basic or token auth toward the upstream).")
    password: SecretStr | None = Field(None, description="Upstream password or access token.")
    manifest_ttl_seconds: int = Field(
        300, ge=0, description="How long a manifest fetched by tag is served before it is revalidated with HEAD."
    )
    pull: Literal["public", "authenticated", "grants"] = Field(
        "authenticated",
        description="Who may pull through this mirror with auth on: everyone, any signed-in user, or only "
        "those with a grant on the namespace (as for local repositories).",
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Connect and read timeout of upstream requests.")

    @field_serializer("password", when_used="json")
    def _secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _reveal(value, info)

    @model_validator(mode="after")
    def _check(self) -> MirrorSettings:
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"mirror upstream {self.upstream!r} must be an http:// or https:// URL")
        self.upstream = self.upstream.rstrip("/")
        self.prefix = self.prefix.strip("/")
        if self.prefix and not NAME_RE.match(self.prefix):
            raise ValueError(f"mirror prefix {self.prefix!r} must be lower-case repository name components")
        if self.password is not None and self.username is None:
            raise ValueError("a mirror password needs a username")
        return self


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
    inline_blob_max_bytes: int = Field(
        64 * 1024,
        ge=0,
        le=MIB,
        description="Blobs up to this size that arrive whole in one request, or in one PATCH and an empty PUT, are "
        "kept in the database instead of blob storage (0: never).",
    )
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
    web_ui: bool = Field(True, description="Serve the web UI (explore, search, repository pages) at `/`.")
    docker_search: bool = Field(
        True,
        description="Answer `docker search` (`GET /v1/_ping`, `GET /v1/search`); the search API and UI are always on.",
    )
    public_signup: bool = Field(
        False, description="Public mode: anyone may create an account on the web UI's sign-up page."
    )
    web_session_hours: int = Field(
        14 * 24, ge=1, le=24 * 365, description="How long a web UI sign-in lasts (sign-out ends it at once)."
    )
    webhooks_enabled: bool = Field(True, description="Send webhook notifications to the endpoints namespaces set up.")
    webhook_max_attempts: int = Field(
        10, ge=1, le=100, description="Attempts per webhook delivery before it is marked failed."
    )
    webhook_backoff_seconds: float = Field(
        5.0, gt=0, description="Wait after the first failed delivery attempt; doubled after each further failure."
    )
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest wait between delivery attempts.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one webhook request.")
    webhook_poll_seconds: float = Field(2.0, gt=0, description="How often the leader looks for due webhook deliveries.")
    webhook_log_retention_days: int = Field(
        30, ge=1, description="Delivered and failed webhook deliveries are kept this long in the delivery log."
    )
    webhook_endpoint_cache_seconds: float = Field(
        5.0, ge=0, description="How long each process caches a namespace's endpoints (0: read them on every event)."
    )
    read_only: bool = Field(
        False, description="Refuse every write (maintenance); `portside maintenance on` sets the same at runtime."
    )
    maintenance_cache_seconds: float = Field(
        2.0, ge=0, description="How long each process caches the runtime read-only flag stored in the database."
    )
    mirrors: list[MirrorSettings] = Field(
        default_factory=list,
        description="Pull-through caches (`[[mirrors]]` in TOML; PORTSIDE_MIRRORS as a JSON list).",
    )

    # Observability, rate limits, TLS and reverse proxies (docs/operations.md).
    access_log: bool = Field(True, description="Write one JSON line per request to stderr (independent of log_level).")
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses or CIDR networks of reverse proxies whose X-Forwarded-Proto/Host/For and "
        "Forwarded headers are believed; default: loopback only. Empty: believe no one.",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) to serve HTTPS with, HTTP/2 negotiated by ALPN."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_key_password: SecretStr | None = Field(None, description="Password of an encrypted tls_key_file.")
    pull_rate_limit: bool = Field(
        False, description="Limit pulls (manifest GETs) per window, as Docker Hub does; off: no cost at all."
    )
    pull_limit_anonymous: int = Field(100, ge=1, description="Pulls per window for each anonymous client address.")
    pull_limit_authenticated: int = Field(200, ge=1, description="Pulls per window for each signed-in account.")
    pull_limit_window_seconds: int = Field(
        21600, ge=1, description="Length of the fixed pull-limit window (default 6 hours)."
    )

    @field_serializer("s3_secret_access_key", "admin_password", "tls_key_password", when_used="json")
    def _secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _reveal(value, info)

    @model_validator(mode="after")
    def _check_s3(self) -> Settings:
        if self.storage_driver == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket is required when storage_driver is 's3'")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("s3_access_key_id and s3_secret_access_key go together")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        TrustedProxies.parse(self.trusted_proxies)
        prefixes = [mirror.prefix for mirror in self.mirrors]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two mirrors have the same prefix")
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
