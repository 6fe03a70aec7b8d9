"""Typed settings: defaults, then a TOML file, then ``PORTSIDE_*`` environment variables, then flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MIB = 1024 * 1024


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
    storage_driver: Literal["filesystem"] = Field("filesystem", description="Where blob bytes are kept.")
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
