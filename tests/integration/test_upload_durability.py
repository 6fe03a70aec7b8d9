"""A chunk is acknowledged only once it would survive a power cut: watched with strace on a real worker.

A power cut cannot be staged here, so these tests watch the system calls instead: the worker's
threads are traced (``strace -f -p``) while a client pushes, and the order of the ``fsync`` calls
and of the ``202`` written to the socket is read from the trace.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.protocol import random_bytes
from tests.support.server import ServerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("strace") is None, reason="needs strace (Debian package strace, `make system-deps`)"
    ),
]

LARGER_THAN_INLINE = 100 * 1024  # over `inline_blob_max_bytes` (64 KiB): the first PATCH makes a file


def _traced(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in status.splitlines())


@contextmanager
def syscall_trace(pid: int, log: Path) -> Iterator[list[str]]:
    """Trace every thread of ``pid`` (fsyncs and writes, fds shown as paths); the lines, once stopped."""
    lines: list[str] = []
    tracer = subprocess.Popen(
        [
            "strace",
            "-f",
            "-y",
            "-qq",
            "-s",
            "24",
            "-e",
            "trace=fsync,fdatasync,write,writev,sendto,sendmsg",
            "-p",
            str(pid),
            "-o",
            str(log),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        threads = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
        while not all(_traced(thread) for thread in threads):
            if tracer.poll() is not None or time.monotonic() > deadline:
                assert tracer.stderr is not None
                pytest.fail(f"strace did not attach: {tracer.stderr.read().decode(errors='replace')}")
            time.sleep(0.05)
        yield lines
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=15)
    lines.extend(log.read_text(errors="replace").splitlines())


def _first(lines: list[str], *parts: str) -> int:
    """The index of the first line holding every part; -1 if none does."""
    return next((index for index, line in enumerate(lines) if all(part in line for part in parts)), -1)


def _open_session(client: httpx.Client, repository: str) -> tuple[str, str]:
    """``POST`` a new upload session: its ``Location`` and its id."""
    location = client.post(f"/v2/{repository}/blobs/uploads/").headers["Location"]
    return location, location.rstrip("/").rsplit("/", 1)[1]


def _fsynced_before_the_202(lines: list[str], path: Path) -> bool:
    """Whether the trace shows an ``fsync`` of ``path`` before the worker wrote a ``202``."""
    answered = _first(lines, '"HTTP/1.1 202')
    return 0 <= _first(lines, "fsync(", f"<{path}>") < answered


@dataclass(frozen=True)
class OneWorker:
    """A private server with one worker: a client for it, its uploads directory, the worker's pid."""

    client: httpx.Client
    uploads: Path
    worker: int


@pytest.fixture
def one_worker(start_server: Callable[..., ServerProcess]) -> Iterator[OneWorker]:
    """A server whose single worker answers every request (so one trace sees them all)."""
    server = start_server(workers=1)
    assert server.process is not None
    workers = psutil.Process(server.process.pid).children()
    assert len(workers) == 1, workers
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield OneWorker(client, server.data_dir / "storage" / "uploads", workers[0].pid)


def test_the_first_patch_that_makes_a_session_file_fsyncs_its_directory_before_the_202(
    one_worker: OneWorker, tmp_path: Path
) -> None:
    client, uploads = one_worker.client, one_worker.uploads
    location, session = _open_session(client, "durable/one")
    with syscall_trace(one_worker.worker, tmp_path / "strace.log") as lines:
        patched = client.patch(
            location,
            content=random_bytes(LARGER_THAN_INLINE),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert patched.status_code == 202, patched.text
        assert patched.headers["Range"] == f"0-{LARGER_THAN_INLINE - 1}"
    assert (uploads / session).stat().st_size == LARGER_THAN_INLINE
    assert _first(lines, '"HTTP/1.1 202') >= 0, "\n".join(lines)
    assert _fsynced_before_the_202(lines, uploads), "\n".join(lines)
    assert _fsynced_before_the_202(lines, uploads / session), "\n".join(lines)


def test_a_later_patch_fsyncs_the_session_file_and_not_its_directory_again(
    one_worker: OneWorker, tmp_path: Path
) -> None:
    client, uploads = one_worker.client, one_worker.uploads
    location, session = _open_session(client, "durable/two")
    first = client.patch(location, content=random_bytes(LARGER_THAN_INLINE))
    assert first.status_code == 202, first.text
    with syscall_trace(one_worker.worker, tmp_path / "strace.log") as lines:
        second = client.patch(
            first.headers["Location"],
            content=random_bytes(LARGER_THAN_INLINE),
            headers={"Content-Range": f"{LARGER_THAN_INLINE}-{2 * LARGER_THAN_INLINE - 1}"},
        )
        assert second.status_code == 202, second.text
    assert _fsynced_before_the_202(lines, uploads / session), "\n".join(lines)
    # The directory entry was made durable by the first PATCH: once is enough.
    assert _first(lines, "fsync(", f"<{uploads}>") == -1, "\n".join(lines)


def test_a_patch_moving_a_kept_first_chunk_into_a_file_fsyncs_its_directory_before_the_202(
    one_worker: OneWorker, tmp_path: Path
) -> None:
    client, uploads = one_worker.client, one_worker.uploads
    small = random_bytes(1000)  # kept in the session's row: no file yet
    location, session = _open_session(client, "durable/three")
    first = client.patch(location, content=small)
    assert first.status_code == 202, first.text
    assert not (uploads / session).exists()
    with syscall_trace(one_worker.worker, tmp_path / "strace.log") as lines:
        second = client.patch(first.headers["Location"], content=random_bytes(LARGER_THAN_INLINE))
        assert second.status_code == 202, second.text
    assert (uploads / session).read_bytes()[:1000] == small
    assert _fsynced_before_the_202(lines, uploads), "\n".join(lines)
    assert _fsynced_before_the_202(lines, uploads / session), "\n".join(lines)
