"""A Docker engine of a test's own: Debian's ``dockerd`` and the ``containerd`` it starts.

Only what pulls and pushes need runs: no bridge, no iptables rules, the ``vfs`` storage driver,
and every directory (data, state, sockets, the CLI's config) under one temporary directory. Two
paths Docker 20.10 cannot move stay outside it: the engine's identity key, made once in
``/etc/docker/key.json``, and an empty ``/run/docker/plugins``.
Docker treats registries on 127.0.0.0/8 as plain HTTP without being told. ``docker`` commands
run with ``DOCKER_HOST`` on the engine's socket and a ``DOCKER_CONFIG`` chosen per call, so one
engine serves several users (the CLI sends the credentials with each pull or push); ``ctr`` talks
to the engine's containerd in a namespace of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.clients import CommandResult, run_command

DOCKERD = Path("/usr/sbin/dockerd")
# Debian's CLI, from the same package as the engine, ahead of any other on PATH.
DEBIAN_DOCKER = Path("/usr/bin/docker")
CTR = "ctr"
CONTAINERD_NAMESPACE = "portside-tests"
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0


def docker_engine_missing() -> str | None:
    """Why no engine can start here, or ``None`` if one can."""
    if os.geteuid() != 0:
        return "dockerd runs as root only (CI runs the suite as root)"
    if not DOCKERD.exists() or shutil.which(CTR) is None:
        return "dockerd and ctr are not installed (Debian package docker.io, `make system-deps`)"
    return None


def _docker_cli() -> str:
    return str(DEBIAN_DOCKER) if DEBIAN_DOCKER.exists() else "docker"


@dataclass
class DockerEngine:
    """A running ``dockerd``; :meth:`start` makes one, :meth:`stop` ends it and removes its files."""

    root: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, *options: str) -> DockerEngine:
        """Start an engine in a new temporary directory, with ``dockerd`` ``options`` (such as
        ``--registry-mirror URL``) added, and wait until it answers."""
        # Short: containerd's socket path under it must fit a unix socket's 108 bytes.
        root = Path(tempfile.mkdtemp(prefix="dk-", dir="/tmp"))
        # An empty configuration of its own: nothing from the host's /etc/docker/daemon.json.
        (root / "daemon.json").write_text("{}")
        log = (root / "dockerd.log").open("wb")
        command = [
            str(DOCKERD),
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "run"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "--config-file",
            str(root / "daemon.json"),
            "--host",
            f"unix://{root / 'docker.sock'}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--storage-driver=vfs",
            *options,
        ]
        # Anything not on loopback (Docker Hub, where a failed mirror falls back) goes to a proxy
        # that is not there, so the engine never looks a name up or leaves the machine.
        nowhere = "http://127.0.0.1:9"
        env = {**os.environ, "HTTP_PROXY": nowhere, "HTTPS_PROXY": nowhere, "NO_PROXY": "127.0.0.1,localhost,::1"}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        engine = cls(root, process)
        try:
            engine._wait_until_ready()
        except BaseException:
            engine.stop()
            raise
        return engine

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "run" / "containerd" / "containerd.sock"

    def log(self) -> str:
        """What the engine has logged so far."""
        return (self.root / "dockerd.log").read_text(errors="replace")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if self.socket.exists() and self.containerd_socket.exists():
                probe = self.docker("version", "--format", "{{.Server.Version}}", config=self.root, check=False)
                if probe.returncode == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within {START_TIMEOUT:g} s:\n{self.log()[-4000:]}")

    def docker(
        self, *args: str, config: Path, stdin: bytes | None = None, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> CommandResult:
        """Run the ``docker`` CLI against this engine, with its configuration (credentials) in ``config``."""
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(config)}
        return run_command([_docker_cli(), *args], env, timeout=timeout, check=check, stdin=stdin)

    def ctr(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        """Run containerd's ``ctr`` against this engine's containerd, in the tests' namespace."""
        argv = [CTR, "--address", str(self.containerd_socket), "--namespace", CONTAINERD_NAMESPACE, *args]
        return run_command(argv, dict(os.environ), timeout=timeout, check=check)

    def stop(self) -> None:
        """Stop the engine (and its containerd) and remove everything it stored."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
