"""Run real registry clients (skopeo, podman, buildah) in per-test isolation.

A :class:`ClientSandbox` owns one temporary directory and runs every command
with:

* its own ``HOME`` and ``XDG_*`` directories, so no user configuration,
  credentials (``~/.docker/config.json``) or caches leak in or out;
* a ``registries.conf`` (``CONTAINERS_REGISTRIES_CONF``) marking the registry
  under test insecure, i.e. plain HTTP, and an empty ``registries.conf.d``;
* a per-sandbox auth file (``REGISTRY_AUTH_FILE``), a ``policy.json`` that
  accepts anything, a ``storage.conf`` (``CONTAINERS_STORAGE_CONF``) and a
  ``containers.conf`` (``CONTAINERS_CONF``);
* vfs storage under the sandbox (``--storage-driver vfs --root --runroot``),
  shared by podman and buildah, and podman's state, network config and temp
  files under the sandbox too;
* as root, a private mount namespace (``unshare --mount``) in which the
  sandbox's own directories are bind-mounted over
  ``/var/lib/containers/cache`` (containers/image's blob-info cache, which root
  always uses whatever flags are given) and ``/run/containers`` (netavark's
  run directory, and the storage runroot: podman refuses a runroot longer than
  50 characters, so the sandbox's runroot is ``/run/containers/storage`` as
  seen inside the namespace). Within one sandbox the cache persists between
  commands, as it would for a user, so cross-repository mounts are exercised
  (:meth:`ClientSandbox.forget_blob_locations` empties it); between sandboxes
  nothing is shared. As non-root, containers/image keeps that cache under
  ``$XDG_DATA_HOME`` instead, which is already per-sandbox.

Every command has a timeout; stdout and stderr are captured, and a failure
raises :class:`ClientError` carrying both.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BLOB_INFO_CACHE_DIR",
    "DEFAULT_TIMEOUT",
    "ClientError",
    "ClientSandbox",
    "ClientTimeout",
    "CommandResult",
    "mount_namespace_available",
    "run_command",
    "tool_available",
]

#: Where containers/image keeps its blob-info cache when run as root.
BLOB_INFO_CACHE_DIR = Path("/var/lib/containers/cache")
#: Root's default storage runroot and netavark run directory live here.
RUN_CONTAINERS_DIR = Path("/run/containers")
#: podman refuses a runroot longer than this (conmon socket paths).
MAX_RUNROOT_LENGTH = 50
#: Seconds any single client command may take.
DEFAULT_TIMEOUT = 60.0

# Run inside the new mount namespace: bind the sandbox's directories over the
# shared ones, then become the client. ``$1``/``$2`` are the sources.
_MOUNT_AND_EXEC = (
    f'set -e; mount --bind "$1" {BLOB_INFO_CACHE_DIR}; mount --bind "$2" {RUN_CONTAINERS_DIR}; shift 2; exec "$@"'
)


class ClientError(RuntimeError):
    """A client command failed; carries everything needed to see why."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stdout: bytes,
        stderr: bytes,
        reason: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        what = reason or f"exited with status {returncode}"
        super().__init__(
            f"{' '.join(self.argv)}\n{what}\n--- stdout ---\n{_show(stdout)}\n--- stderr ---\n{_show(stderr)}"
        )

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")


class ClientTimeout(ClientError):
    """A client command did not finish in time and was killed."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """stdout, decoded and stripped."""
        return self.stdout.decode(errors="replace").strip()

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")


def _show(data: bytes, limit: int = 8000) -> str:
    text = data.decode(errors="replace")
    if len(text) > limit:
        return text[:limit] + f"\n... ({len(text) - limit} more characters)"
    return text


def tool_available(name: str) -> bool:
    """Whether ``name`` is on PATH."""
    return shutil.which(name) is not None


@functools.cache
def mount_namespace_available() -> bool:
    """Whether this process can make a private mount namespace and bind-mount."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                "mount -t tmpfs none /mnt",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@dataclass
class ClientSandbox:
    """One isolated environment for skopeo, podman and buildah.

    Build it with :meth:`create`; ``registry_host`` is ``127.0.0.1:PORT``.
    """

    base: Path
    registry_host: str
    timeout: float = DEFAULT_TIMEOUT
    credentials: tuple[str, str] | None = None
    #: True when the blob-info cache is private to this sandbox.
    cache_isolated: bool = False
    #: True when commands run in a private mount namespace (root only).
    uses_mount_namespace: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    _short_runroot: Path | None = None

    # ------------------------------------------------------------------
    # construction

    @classmethod
    def create(
        cls,
        base: Path,
        registry_host: str,
        *,
        credentials: tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        insecure_hosts: Sequence[str] = (),
    ) -> ClientSandbox:
        """Lay out ``base`` (created if missing) and return a sandbox in it.

        ``credentials`` (user, password) are written into the auth file for
        ``registry_host``. ``insecure_hosts`` adds further plain-HTTP
        registries to ``registries.conf``.
        """
        base = Path(base).resolve()
        sandbox = cls(base=base, registry_host=registry_host, timeout=timeout, credentials=credentials)
        if os.geteuid() == 0:
            if mount_namespace_available():
                # The mount points must exist on the host; they stay empty there.
                BLOB_INFO_CACHE_DIR.mkdir(parents=True, exist_ok=True)
                RUN_CONTAINERS_DIR.mkdir(parents=True, exist_ok=True)
                sandbox.uses_mount_namespace = True
                sandbox.cache_isolated = True
            else:
                warnings.warn(
                    "cannot create a mount namespace: containers/image will share "
                    f"{BLOB_INFO_CACHE_DIR} with other runs",
                    stacklevel=2,
                )
        else:
            # Non-root containers/image uses $XDG_DATA_HOME/containers/cache.
            sandbox.cache_isolated = True
        if not sandbox.uses_mount_namespace and len(str(sandbox.storage_runroot)) > MAX_RUNROOT_LENGTH:
            sandbox._short_runroot = Path(tempfile.mkdtemp(prefix="portside-runroot-"))

        for directory in (
            sandbox.home,
            sandbox.home / ".config" / "containers" / "registries.conf.d",
            sandbox.home / ".config" / "containers" / "registries.d",
            sandbox.home / ".local" / "share",
            sandbox.home / ".cache",
            sandbox.runtime_dir,
            sandbox.tmp_dir,
            sandbox.storage_root,
            sandbox.podman_tmpdir,
            sandbox.network_config_dir,
            sandbox.volume_path,
            sandbox.blob_info_cache,
            sandbox.run_containers,
            sandbox.work,
        ):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
        if not sandbox.uses_mount_namespace:
            sandbox.storage_runroot.mkdir(parents=True, exist_ok=True)

        sandbox._write_configs([registry_host, *insecure_hosts])
        sandbox.write_auth_file(credentials)
        return sandbox

    def close(self) -> None:
        """Remove anything the sandbox made outside :attr:`base`."""
        if self._short_runroot is not None:
            shutil.rmtree(self._short_runroot, ignore_errors=True)
            self._short_runroot = None

    def __enter__(self) -> ClientSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------
    # paths

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def runtime_dir(self) -> Path:
        return self.base / "xdg-runtime"

    @property
    def tmp_dir(self) -> Path:
        return self.base / "tmp"

    @property
    def storage_root(self) -> Path:
        return self.base / "storage" / "root"

    @property
    def storage_runroot(self) -> Path:
        """Storage run directory, as the clients see it.

        podman refuses runroots longer than 50 characters, so in a mount
        namespace this is ``/run/containers/storage`` (which is this sandbox's
        :attr:`run_containers` there); otherwise a short directory in /tmp.
        """
        if self.uses_mount_namespace:
            return RUN_CONTAINERS_DIR / "storage"
        if self._short_runroot is not None:
            return self._short_runroot
        return self.base / "storage" / "runroot"

    @property
    def podman_tmpdir(self) -> Path:
        return self.base / "podman" / "tmp"

    @property
    def network_config_dir(self) -> Path:
        return self.base / "podman" / "networks"

    @property
    def volume_path(self) -> Path:
        return self.base / "podman" / "volumes"

    @property
    def blob_info_cache(self) -> Path:
        """Bind-mounted over /var/lib/containers/cache (root)."""
        return self.base / "blob-info-cache"

    @property
    def run_containers(self) -> Path:
        """Bind-mounted over /run/containers (root)."""
        return self.base / "run-containers"

    @property
    def work(self) -> Path:
        """Scratch space for the test: layouts, archives, digest files."""
        return self.base / "work"

    @property
    def config_dir(self) -> Path:
        return self.base / "config"

    @property
    def registries_conf(self) -> Path:
        return self.config_dir / "registries.conf"

    @property
    def auth_file(self) -> Path:
        return self.config_dir / "auth.json"

    @property
    def policy_file(self) -> Path:
        return self.config_dir / "policy.json"

    @property
    def storage_conf(self) -> Path:
        return self.config_dir / "storage.conf"

    @property
    def containers_conf(self) -> Path:
        return self.config_dir / "containers.conf"

    @property
    def blob_info_cache_file(self) -> Path:
        """Where this sandbox's blob-info cache database ends up."""
        if os.geteuid() == 0:
            return self.blob_info_cache / "blob-info-cache-v1.boltdb"
        return self.home / ".local" / "share" / "containers" / "cache" / "blob-info-cache-v1.boltdb"

    def forget_blob_locations(self) -> None:
        """Empty this sandbox's blob-info cache.

        While the cache knows where a blob already is, podman and buildah push
        it with a cross-repository mount instead of uploading it. Forgetting
        makes them recompress and upload every layer, which they do with a
        ``PATCH`` in ``Transfer-Encoding: chunked`` (the size is not known).
        """
        self.blob_info_cache_file.unlink(missing_ok=True)

    # ------------------------------------------------------------------
    # configuration files

    def _write_configs(self, insecure_hosts: Sequence[str]) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        registries = [
            "# Written by tests/support/clients.py",
            "unqualified-search-registries = []",
            'short-name-mode = "permissive"',
        ]
        for host in dict.fromkeys(insecure_hosts):
            registries += ["", "[[registry]]", f'location = "{host}"', "insecure = true"]
        self.registries_conf.write_text("\n".join(registries) + "\n")

        policy = json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
        self.policy_file.write_text(policy + "\n")
        # containers/image prefers $HOME/.config/containers/policy.json.
        (self.home / ".config" / "containers" / "policy.json").write_text(policy + "\n")

        self.storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.storage_root}"\nrunroot = "{self.storage_runroot}"\n'
        )
        self.containers_conf.write_text(
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "none"\n'
            f'tmp_dir = "{self.podman_tmpdir}"\n'
            f'volume_path = "{self.volume_path}"\n'
            f'image_copy_tmp_dir = "{self.tmp_dir}"\n'
            "\n[network]\n"
            f'network_config_dir = "{self.network_config_dir}"\n'
        )

    def write_auth_file(self, credentials: tuple[str, str] | None) -> None:
        """Replace the auth file: empty, or holding ``credentials`` for the registry."""
        auths: dict[str, Any] = {}
        if credentials is not None:
            user, password = credentials
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            auths[self.registry_host] = {"auth": token}
        self.credentials = credentials
        self.auth_file.write_text(json.dumps({"auths": auths}, indent=1) + "\n")
        self.auth_file.chmod(0o600)

    def env(self) -> dict[str, str]:
        """The environment every client command runs with."""
        keep = ("PATH", "LANG", "LC_ALL", "TERM", "TZ")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.update(
            {
                "HOME": str(self.home),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_DATA_HOME": str(self.home / ".local" / "share"),
                "XDG_CACHE_HOME": str(self.home / ".cache"),
                "XDG_RUNTIME_DIR": str(self.runtime_dir),
                "TMPDIR": str(self.tmp_dir),
                "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
                "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
                "CONTAINERS_CONF": str(self.containers_conf),
                "REGISTRY_AUTH_FILE": str(self.auth_file),
                # Never let a proxy setting send loopback traffic elsewhere.
                "NO_PROXY": "*",
                "no_proxy": "*",
            }
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------
    # running

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
        cwd: Path | None = None,
    ) -> CommandResult:
        """Run ``argv`` in the sandbox; raise :class:`ClientError` on failure."""
        argv = [str(part) for part in argv]
        full = argv
        if self.uses_mount_namespace:
            full = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                _MOUNT_AND_EXEC,
                "sandbox",
                str(self.blob_info_cache),
                str(self.run_containers),
                *argv,
            ]
        limit = self.timeout if timeout is None else timeout
        return run_command(argv, self.env(), timeout=limit, check=check, stdin=stdin, cwd=cwd or self.work, full=full)

    # ------------------------------------------------------------------
    # references

    def docker_ref(self, repository: str, reference: str = "latest") -> str:
        """``docker://HOST/repo:tag`` or ``docker://HOST/repo@sha256:...``."""
        return "docker://" + self.image_ref(repository, reference)

    def image_ref(self, repository: str, reference: str = "latest") -> str:
        """``HOST/repo:tag`` or ``HOST/repo@sha256:...`` (podman/buildah style)."""
        separator = "@" if ":" in reference else ":"
        return f"{self.registry_host}/{repository}{separator}{reference}"

    def _digest_file(self, stem: str) -> Path:
        counter = len(list(self.work.glob(f"{stem}-*.digest")))
        return self.work / f"{stem}-{counter}.digest"

    # ------------------------------------------------------------------
    # skopeo

    def skopeo(self, *args: str, timeout: float | None = None, check: bool = True) -> CommandResult:
        """``skopeo`` with the sandbox policy, registries.d and temp directory."""
        return self.run(
            [
                "skopeo",
                "--policy",
                str(self.policy_file),
                "--registries.d",
                str(self.home / ".config" / "containers" / "registries.d"),
                # Without it docker-archive and friends write to /var/tmp whatever TMPDIR says.
                "--tmpdir",
                str(self.tmp_dir),
                *args,
            ],
            timeout=timeout,
            check=check,
        )

    def skopeo_copy(
        self,
        src: str,
        dst: str,
        *,
        all_images: bool = False,
        format: str | None = None,
        preserve_digests: bool = False,
        extra: Sequence[str] = (),
        timeout: float | None = None,
    ) -> str:
        """``skopeo copy SRC DST``; returns the digest of the manifest written.

        ``format`` is ``oci``, ``v2s2`` or ``v2s1``; ``all_images`` copies every
        image of a list (``--all``); ``preserve_digests`` makes skopeo fail
        rather than write a manifest with a different digest.
        """
        digest_file = self._digest_file("skopeo-copy")
        args = [
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--retry-times=0",
            "--digestfile",
            str(digest_file),
        ]
        if all_images:
            args.append("--all")
        if format is not None:
            args += ["--format", format]
        if preserve_digests:
            args.append("--preserve-digests")
        self.skopeo(*args, *extra, src, dst, timeout=timeout)
        return digest_file.read_text().strip()

    def skopeo_inspect(self, ref: str) -> dict[str, Any]:
        """``skopeo inspect REF`` parsed (resolves lists to this platform)."""
        parsed: dict[str, Any] = json.loads(self.skopeo("inspect", "--tls-verify=false", ref).stdout)
        return parsed

    def skopeo_inspect_raw(self, ref: str) -> bytes:
        """The manifest bytes exactly as the registry served them."""
        return self.skopeo("inspect", "--tls-verify=false", "--raw", ref).stdout

    def skopeo_inspect_config(self, ref: str) -> bytes:
        """The config blob bytes of the image at ``ref``."""
        return self.skopeo("inspect", "--tls-verify=false", "--config", "--raw", ref).stdout

    def skopeo_delete(self, ref: str) -> None:
        self.skopeo("delete", "--tls-verify=false", ref)

    def skopeo_list_tags(self, repository_ref: str) -> list[str]:
        """Tags of ``docker://HOST/repo`` (no tag in the reference)."""
        listing = json.loads(self.skopeo("list-tags", "--tls-verify=false", repository_ref).stdout)
        tags: list[str] = listing.get("Tags") or []
        return tags

    def skopeo_login(self, user: str, password: str, *, check: bool = True) -> CommandResult:
        """``skopeo login`` into the registry, writing the sandbox auth file."""
        return self.skopeo(
            "login",
            "--tls-verify=false",
            "--authfile",
            str(self.auth_file),
            "--username",
            user,
            "--password",
            password,
            self.registry_host,
            check=check,
        )

    # ------------------------------------------------------------------
    # podman

    def podman(
        self,
        *args: str,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """``podman <isolating global flags> ARGS``."""
        return self.run(
            [
                "podman",
                "--storage-driver",
                "vfs",
                "--root",
                str(self.storage_root),
                "--runroot",
                str(self.storage_runroot),
                "--tmpdir",
                str(self.podman_tmpdir),
                "--network-config-dir",
                str(self.network_config_dir),
                "--volumepath",
                str(self.volume_path),
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
                *args,
            ],
            timeout=timeout,
            check=check,
            stdin=stdin,
        )

    def podman_pull(self, ref: str, *, timeout: float | None = None) -> str:
        """``podman pull REF`` (``HOST/repo:tag``); returns the image ID."""
        result = self.podman("pull", "--quiet", "--tls-verify=false", ref, timeout=timeout)
        return result.text.splitlines()[-1]

    def podman_push(
        self,
        image: str,
        dest: str,
        *,
        format: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """``podman push IMAGE DEST``; returns the manifest digest podman wrote.

        podman recompresses layers, so the digest comes from ``--digestfile``
        rather than from the source image. ``dest`` may be ``HOST/repo:tag`` or
        a transport reference such as ``docker://HOST/repo:tag``.
        """
        digest_file = self._digest_file("podman-push")
        args = ["push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file)]
        if format is not None:
            args += ["--format", format]
        self.podman(*args, image, dest, timeout=timeout)
        return digest_file.read_text().strip()

    def podman_image_inspect(self, image: str) -> dict[str, Any]:
        parsed = json.loads(self.podman("image", "inspect", image).stdout)
        result: dict[str, Any] = parsed[0]
        return result

    def podman_images(self) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = json.loads(self.podman("images", "--format", "json").stdout or b"[]")
        return listing

    def podman_tag(self, image: str, new_name: str) -> None:
        self.podman("tag", image, new_name)

    def podman_rmi(self, *images: str) -> None:
        self.podman("rmi", "--force", *images)

    def podman_login(self, user: str, password: str, *, check: bool = True) -> CommandResult:
        """``podman login`` (password on stdin), writing the sandbox auth file."""
        return self.podman(
            "login",
            "--tls-verify=false",
            "--authfile",
            str(self.auth_file),
            "--username",
            user,
            "--password-stdin",
            self.registry_host,
            check=check,
            stdin=password.encode(),
        )

    # ------------------------------------------------------------------
    # buildah (shares the vfs store with podman)

    def buildah(self, *args: str, timeout: float | None = None, check: bool = True) -> CommandResult:
        return self.run(
            [
                "buildah",
                "--storage-driver",
                "vfs",
                "--root",
                str(self.storage_root),
                "--runroot",
                str(self.storage_runroot),
                "--registries-conf",
                str(self.registries_conf),
                *args,
            ],
            timeout=timeout,
            check=check,
        )

    def buildah_from_scratch(self) -> str:
        """A new working container from scratch; returns its name."""
        return self.buildah("from", "--quiet", "scratch").text

    def buildah_copy(self, container: str, source: Path, dest: str) -> None:
        self.buildah("copy", "--quiet", container, str(source), dest)

    def buildah_config(self, container: str, *options: str) -> None:
        """``buildah config OPTIONS CONTAINER``, e.g. ``--label``, ``a=b``."""
        self.buildah("config", *options, container)

    def buildah_commit(self, container: str, image: str, *, format: str = "oci") -> str:
        """Commit ``container`` as ``image``; returns the image ID."""
        return self.buildah("commit", "--quiet", "--format", format, container, image).text

    def buildah_rm(self, *containers: str) -> None:
        self.buildah("rm", *containers)

    def buildah_pull(self, ref: str) -> str:
        return self.buildah("pull", "--quiet", "--tls-verify=false", ref).text.splitlines()[-1]

    def buildah_push(
        self,
        image: str,
        dest: str,
        *,
        format: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """``buildah push IMAGE DEST`` (chunked PATCH uploads); returns the digest."""
        digest_file = self._digest_file("buildah-push")
        args = ["push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file)]
        if format is not None:
            args += ["--format", format]
        self.buildah(*args, image, dest, timeout=timeout)
        return digest_file.read_text().strip()


def run_command(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    timeout: float,
    check: bool = True,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    full: Sequence[str] | None = None,
) -> CommandResult:
    """Run ``full`` (``argv`` itself by default; errors name ``argv``) in a session of its own, so
    that a timeout kills it with its children; raise :class:`ClientError` on failure."""
    argv = [str(part) for part in argv]
    process = subprocess.Popen(
        [str(part) for part in (full or argv)],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=None if cwd is None else str(cwd),
        start_new_session=True,  # so a timeout can kill the whole group
    )
    try:
        stdout, stderr = process.communicate(input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        raise ClientTimeout(argv, None, stdout, stderr, reason=f"timed out after {timeout:g} s") from None
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise
    result = CommandResult(tuple(argv), process.returncode, stdout, stderr)
    if check and process.returncode != 0:
        raise ClientError(argv, process.returncode, stdout, stderr)
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
