"""The two registries under test, each in its own process group with a fresh data directory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.httpclient import Connection, HttpError
from bench.tokens import ISSUER, SERVICE, TokenKey
from deploy.processes import free_port

PORTSIDE = "portside"
DISTRIBUTION = "distribution"
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

# Distribution 2.8 with the filesystem driver, deletes on, access log off (Portside logs at
# "warning" too), the in-memory blob descriptor cache of the shipped example config, no auth.
DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: portside-bench-secret
"""

# Added for token-auth runs. The realm is never contacted (the bench signs its own tokens), so it
# points at a port nothing listens on; the bundle holds the bench key's self-signed certificate.
DISTRIBUTION_TOKEN_AUTH = """\
auth:
  token:
    realm: http://127.0.0.1:1/token
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
"""


class ServerError(RuntimeError):
    """A server failed to start, died, or misbehaved; the message carries its log tail."""


@dataclass
class Server:
    """One registry process tree: ``start``, use ``host``/``port``, always ``stop``.

    With a ``token_key`` the server requires bearer tokens and trusts exactly that key;
    :meth:`auth_headers` makes the header every client request then carries.
    """

    name: str
    workdir: Path
    workers: int = 2
    token_key: TokenKey | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.workdir / "server.log"

    @property
    def label(self) -> str:
        """The name, and the auth mode if there is one (for progress messages)."""
        return f"{self.name} (token auth)" if self.token_key else self.name

    def auth_headers(self, repositories: Iterable[str] = (), catalog: bool = False) -> dict[str, str]:
        """``Authorization`` with a token for ``repositories``; nothing if the server is open."""
        if self.token_key is None:
            return {}
        return self.token_key.headers(repositories, catalog)

    @property
    def data_dir(self) -> Path:
        """The server's fresh data directory."""
        return self.workdir / "data"

    @property
    def pid(self) -> int:
        """The root process id (the process group leader)."""
        if self.process is None:
            raise ServerError(f"{self.name} is not running")
        return self.process.pid

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ}
        if self.name == PORTSIDE:
            env["PORTSIDE_LOG_LEVEL"] = "warning"
            # Distribution runs with its access log off (DISTRIBUTION_CONFIG): so does Portside.
            env.setdefault("PORTSIDE_ACCESS_LOG", "false")
            if self.token_key is not None:
                # Before the start, so every worker's key ring reads it (and makes no key of its own).
                keys = self.data_dir / "keys"
                keys.mkdir(parents=True, exist_ok=True)
                pem = keys / "bench.pem"
                pem.write_bytes(self.token_key.private_pem())
                pem.chmod(0o600)
                env.update(PORTSIDE_AUTH="token", PORTSIDE_TOKEN_ISSUER=ISSUER, PORTSIDE_TOKEN_SERVICE=SERVICE)
            portside = Path(sys.executable).with_name("portside")
            launcher = [str(portside)] if portside.exists() else [sys.executable, "-m", "portside"]
            return [
                *launcher,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
            ], env
        if self.name == DISTRIBUTION:
            if not Path(DISTRIBUTION_BINARY).exists():
                raise ServerError(
                    f"{DISTRIBUTION_BINARY} is missing: install the Debian package docker-registry "
                    "(apt-get install -y docker-registry)"
                )
            config = self.workdir / "config.yml"
            text = DISTRIBUTION_CONFIG.format(root=self.data_dir, port=self.port)
            if self.token_key is not None:
                bundle = self.workdir / "token-ca.pem"
                bundle.write_bytes(self.token_key.certificate_pem())
                text += DISTRIBUTION_TOKEN_AUTH.format(service=SERVICE, issuer=ISSUER, bundle=bundle)
            config.write_text(text)
            # Keep Distribution's settings in the file only.
            env = {key: value for key, value in env.items() if not key.startswith("REGISTRY_")}
            return [DISTRIBUTION_BINARY, "serve", str(config)], env
        raise ServerError(f"unknown server {self.name!r}")

    def start(self) -> Server:
        """Start the server in a new session and wait until ``GET /v2/`` answers 200.

        With token auth the probe carries a token, and once up the server must refuse the same
        request without one (401): a server that let anonymous clients in would measure nothing.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.argv, env = self._command()
        probe = self.auth_headers()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with Connection("127.0.0.1", self.port, timeout=2.0) as conn:
                    if conn.request("GET", "/v2/", probe).status == 200:
                        if self.name == PORTSIDE:
                            self._wait_for_workers(deadline, probe)
                        if self.token_key is not None:
                            self._check_refuses_anonymous()
                        return self
            except HttpError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.label} did not answer GET /v2/ within {START_TIMEOUT:.0f} s\n{self.log_tail()}")

    def _check_refuses_anonymous(self) -> None:
        with Connection("127.0.0.1", self.port, timeout=5.0) as conn:
            status = conn.request("GET", "/v2/").status
        if status != 401:
            self.stop()
            raise ServerError(f"{self.label} answered an anonymous GET /v2/ with {status}, not 401")

    def _wait_for_workers(self, deadline: float, headers: dict[str, str]) -> None:
        import psutil

        while time.monotonic() < deadline:
            if len(psutil.Process(self.pid).children(recursive=True)) >= self.workers:
                # Every worker answers only once its lifespan ran; poke a few times so all are warm.
                for _ in range(4 * self.workers):
                    with Connection("127.0.0.1", self.port, timeout=5.0) as conn:
                        conn.request("GET", "/v2/", headers)
                return
            time.sleep(0.1)
        raise ServerError(f"{self.label}: fewer than {self.workers} workers came up\n{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise :class:`ServerError` with the log tail if the server process has exited."""
        if self.process is None:
            raise ServerError(f"{self.name} was never started")
        code = self.process.poll()
        if code is not None:
            raise ServerError(f"{self.name} exited with status {code}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left."""
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        # Workers that outlived their parent are still in the group.
        _signal_group(pgid, signal.SIGKILL)
        self.process = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def version_of(name: str) -> str:
    """A one-line version string for the report."""
    try:
        if name == DISTRIBUTION:
            out = subprocess.run(
                [DISTRIBUTION_BINARY, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            return out.stdout.strip() or out.stderr.strip()
        from importlib.metadata import version

        return f"portside {version('portside')} (granian {version('granian')}, Python {sys.version.split()[0]})"
    except (OSError, subprocess.TimeoutExpired, ImportError) as exc:
        return f"unknown ({exc})"
