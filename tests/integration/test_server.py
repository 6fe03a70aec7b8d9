"""The server process and the command line: TLS probes, settings, several workers."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from portside.config import SETTINGS_ENV
from tests.support.protocol import push_blob, random_bytes, sha256, unique_repo
from tests.support.server import RegistryEndpoint, ServerProcess

pytestmark = pytest.mark.integration


def test_tls_client_hello_on_the_plain_port_is_refused_at_once(registry: RegistryEndpoint) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # A server that waited for a request line would hit this 5 s timeout instead of failing the handshake.
    with socket.create_connection(("127.0.0.1", registry.port), timeout=5) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="localhost")


def _portside(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portside", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_help_lists_every_command() -> None:
    result = _portside("--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "config"):
        assert command in result.stdout


def test_serve_help_lists_its_options() -> None:
    result = _portside("serve", "--help")
    for option in ("--host", "--port", "--data-dir", "--config", "--workers"):
        assert option in result.stdout


def test_settings_come_from_toml_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "portside.toml"
    config.write_text('port = 6000\nworkers = 3\nmax_manifest_bytes = 2048\ndata_dir = "/srv/registry"\n')
    result = _portside("config", "--config", str(config), env={"PORTSIDE_WORKERS": "5"})
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["port"] == 6000
    assert settings["workers"] == 5
    assert settings["max_manifest_bytes"] == 2048
    assert settings["data_dir"] == "/srv/registry"


def test_unknown_setting_in_the_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "portside.toml"
    config.write_text("prot = 6000\n")
    result = _portside("config", "--config", str(config))
    assert result.returncode != 0
    assert "prot" in result.stderr


def test_serve_uses_the_config_file(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    config = tmp_path / "portside.toml"
    config.write_text("max_manifest_bytes = 1024\ndelete_enabled = false\n")
    server = start_server(extra_args=["--config", str(config)])
    with httpx.Client(base_url=server.url) as http:
        repo = unique_repo()
        big = b'{"schemaVersion": 2, "annotations": {"a": "' + b"x" * 2000 + b'"}}'
        response = http.put(
            f"/v2/{repo}/manifests/latest",
            content=big,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status_code == 413
        data = random_bytes(10)
        http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert http.delete(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 405


def test_chunks_landing_on_different_workers_still_hash_correctly(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(workers=2)
    repo, data = unique_repo(), random_bytes(6 * 1024 * 1024)
    with httpx.Client(base_url=server.url) as http:
        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    chunk = 512 * 1024
    for offset in range(0, len(data), chunk):
        # A new connection per chunk lets the kernel hand each one to either worker.
        with httpx.Client(base_url=server.url) as http:
            response = http.patch(
                location,
                content=data[offset : offset + chunk],
                headers={"Content-Range": f"{offset}-{offset + chunk - 1}"},
            )
            assert response.status_code == 202, response.text
    with httpx.Client(base_url=server.url) as http:
        assert http.put(location, params={"digest": sha256(data)}).status_code == 201
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_node_refuses_an_unmigrated_schema_until_portside_migrate_runs(
    request: pytest.FixtureRequest, start_server: Callable[..., ServerProcess], tmp_path: Path, database: str
) -> None:
    data_dir = tmp_path / "data"
    env = {"PORTSIDE_AUTO_MIGRATE": "false"}
    if database == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    refused = _portside("serve", "--port", "1", "--data-dir", str(data_dir), env=env)
    assert refused.returncode == 2
    assert "portside migrate" in refused.stderr
    migrated = _portside("migrate", "--data-dir", str(data_dir), env=env)
    assert migrated.returncode == 0, migrated.stderr
    server = start_server(data_dir, env=env)
    assert httpx.get(f"{server.url}/v2/").status_code == 200


def _minor_faults(root_pid: int) -> int:
    """Minor page faults of a process and its children (the server and its workers) so far."""
    total = 0
    pids = [root_pid]
    while pids:
        pid = pids.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += int(stat.rsplit(")", 1)[1].split()[7])
        pids.extend(int(child) for child in children)
    return total


def test_a_worker_reuses_its_buffers_from_push_to_push(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    assert server.process is not None
    repo = unique_repo("faults")
    size = 64 << 20
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        for _ in range(2):  # the first pushes grow the heap to what a push needs
            push_blob(client, repo, random_bytes(size))
        body = random_bytes(size)
        before = _minor_faults(server.process.pid)
        push_blob(client, repo, body)
        faults = _minor_faults(server.process.pid) - before
    # 64 MiB is 16,384 pages. Without the allocator settings of portside.workers.process, a push this
    # size faulted in about a quarter of them afresh; with them, a few hundred at most.
    assert faults < 1_500, faults


def test_the_serving_process_refuses_to_start_without_settings_from_portside_serve() -> None:
    env = {key: value for key, value in os.environ.items() if key != SETTINGS_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "portside.serving"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert "start the server with `portside serve`" in result.stderr


def test_serve_becomes_the_lean_serving_process_under_the_same_process_id(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    assert server.process is not None
    serving = psutil.Process(server.process.pid)
    assert httpx.get(f"{server.url}/v2/").status_code == 200
    # `portside serve` replaced itself: the process it started is now `python -m portside.serving`,
    # and its workers were forked from that.
    assert _module_run_by(serving) == "portside.serving"
    workers = serving.children()
    assert workers
    assert {_module_run_by(worker) for worker in workers} == {"portside.serving"}


def _module_run_by(process: psutil.Process) -> str | None:
    arguments = process.cmdline()
    return arguments[2] if arguments[1:2] == ["-m"] else None


def test_a_second_server_on_a_port_already_served_refuses_to_start(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    # Another authentication mode and data directory: sharing the port would serve half the
    # connections with these settings.
    first = start_server()
    second = _portside(
        "serve", "--port", str(first.port), "--data-dir", str(tmp_path / "second"), env={"PORTSIDE_AUTH": "basic"}
    )
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{first.port}: Address already in use" in second.stderr
    assert "Traceback" not in second.stderr
    assert "Portside serving" not in second.stdout
    with httpx.Client(base_url=first.url) as http:
        for _ in range(8):  # new connections: none may reach a second server
            assert http.get("/v2/", headers={"Connection": "close"}).status_code == 200
    # A program that is not Portside: the same one line, no traceback.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        refused = _portside("serve", "--port", str(taken), "--data-dir", str(tmp_path / "third"))
    assert refused.returncode == 2
    assert f"cannot listen on 127.0.0.1:{taken}: Address already in use" in refused.stderr
    assert "Traceback" not in refused.stderr
