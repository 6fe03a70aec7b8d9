"""Processes Portside runs beside itself on loopback: Portside servers, PostgreSQL, an S3-API
server (moto) and an nginx load balancer. Used by `make cluster` and by the test suite."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def stop_process(
    process: subprocess.Popen[bytes] | None, sig: signal.Signals, grace: float = 10.0, group: bool = False
) -> None:
    """Send ``sig`` (to the process group with ``group``); SIGKILL whatever is left after ``grace`` seconds."""
    if process is None or process.poll() is not None:
        return

    def send(which: signal.Signals) -> None:
        if group:
            os.killpg(process.pid, which)
        else:
            process.send_signal(which)

    send(sig)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """``portside serve`` in its own process group, so a kill reaches every worker."""

    data_dir: Path
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    # With TLS on (PORTSIDE_TLS_* in env): the CA certificate that signed the server's certificate.
    tls_ca: Path | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as clients name the registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL."""
        return f"{'https' if self.tls_ca else 'http'}://{self.host}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and wait until ``GET /v2/`` answers."""
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "PORTSIDE_LOG_LEVEL": "warning", **self.env}
        command = [
            sys.executable,
            "-m",
            "portside",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"portside serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                # 401: up, with authentication switched on.
                verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else True
                if httpx.get(f"{self.url}/v2/", timeout=1.0, verify=verify).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"portside serve did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean shutdown, as in a crash or power cut."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM), then make sure it is gone."""
        stop_process(self.process, signal.SIGTERM, grace=15.0, group=True)
        self.process = None


def postgres_bin() -> Path | None:
    """Directory of Debian's PostgreSQL binaries, newest version first; None if not installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; run them as the package's postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, trust auth on loopback only."""

    root: Path
    port: int = 0

    def start(self) -> PostgresServer:
        """initdb and start; wait until it accepts connections."""
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "pgdata"
        initdb = subprocess.run(
            _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr}")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=300"
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-o", options, "-w", "start"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not become ready")

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy async URL."""
        name = f"portside_{uuid.uuid4().hex[:12]}"
        bin_dir = postgres_bin()
        assert bin_dir is not None
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the cluster fast."""
        bin_dir = postgres_bin()
        if bin_dir is None:
            return
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(self.root / "pgdata"), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )


@dataclass
class MotoServer:
    """moto in server mode: an S3-API endpoint on 127.0.0.1 with one bucket."""

    log_path: Path
    bucket: str = "portside"
    region: str = "us-east-1"
    access_key_id: str = "portside-local"
    secret_access_key: str = "portside-local-secret"  # noqa: S105 - moto accepts any credentials
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        """Start moto, wait for it, create the bucket."""
        import boto3

        self.port = self.port or free_port()
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited with {self.process.returncode}: {self.log_path.read_text()}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not answer: {self.log_path.read_text()}") from None
                time.sleep(0.1)
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )
        client.create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        """Terminate moto."""
        stop_process(self.process, signal.SIGTERM)
        self.process = None


@dataclass
class Nginx:
    """nginx in the foreground, configured from a template with the backends' addresses."""

    template: Path
    prefix: Path
    backends: list[str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The load balancer's URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Nginx:
        """Render the configuration and start nginx."""
        self.port = self.port or free_port()
        self.prefix.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {backend} max_fails=1 fail_timeout=5s;" for backend in self.backends)
        config = (
            self.template.read_text()
            .replace("@PREFIX@", str(self.prefix))
            .replace("@PORT@", str(self.port))
            .replace("@BACKENDS@", servers)
        )
        config_path = self.prefix / "nginx.conf"
        config_path.write_text(config)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        with (self.prefix / "stdout.log").open("ab") as log:
            self.process = subprocess.Popen(
                [nginx, "-p", str(self.prefix), "-c", str(config_path), "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'error.log').read_text(errors='replace')}")
            try:
                httpx.get(f"{self.url}/v2/", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not answer")

    def stop(self) -> None:
        """Stop nginx (SIGQUIT: a graceful shutdown)."""
        stop_process(self.process, signal.SIGQUIT)
        self.process = None
