"""Real Portside server processes on 127.0.0.1 with ephemeral ports, for integration tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.processes import ServerProcess, free_port

__all__ = ["RegistryEndpoint", "ServerProcess", "free_port"]


@dataclass(frozen=True)
class RegistryEndpoint:
    """Where the tests reach a registry; ``data_dir`` only when blobs are on the local filesystem."""

    url: str
    host: str
    port: int
    data_dir: Path | None
