"""Debian's ``docker-registry`` (CNCF Distribution 2.8) on loopback, as an upstream for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

DISTRIBUTION_BINARY = Path("/usr/bin/docker-registry")

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: portside-proxy-test
"""


@dataclass
class Distribution:
    """``docker-registry serve`` on a fixed loopback port, restartable."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Distribution:
        config = self.workdir / "config.yml"
        config.write_text(DISTRIBUTION_CONFIG.format(root=self.workdir / "data", port=self.port))
        env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
        log = (self.workdir / "registry.log").open("ab")
        self.process = subprocess.Popen(
            [str(DISTRIBUTION_BINARY), "serve", str(config)], env=env, stdout=log, stderr=log, start_new_session=True
        )
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None
