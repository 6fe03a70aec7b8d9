"""How fast this machine's disk takes a pushed blob's bytes, with no server and no network in the way.

    python -m bench.disk [--size-mib 256] [--piece-mib 8] [--rounds 6] [--dir /var/tmp] [--quick]

A push is durable only once its bytes are on disk: Portside (like Distribution) answers a
``PATCH`` only after an ``fsync``. So the disk bounds both push scenarios of ``bench.run``,
whatever the server does. This writes ``--size-mib`` of fresh random bytes (no two writes alike:
a repeated buffer ran faster here, which no upload does) into a new file in ``--dir``, four ways:

- ``direct, one fsync``: 4 MiB ``O_DIRECT`` writes from an aligned buffer, then one ``fsync``:
  what Portside's storage does with a monolithic push;
- ``direct, fsync per piece``: the same writes, with an ``fsync`` after every ``--piece-mib``
  (a chunked push's ``PATCH``, each made durable before it is answered);
- ``buffered, one fsync`` and ``buffered, fsync per piece``: the same through the page cache,
  as Distribution writes.

Each round runs every way once (the order rotates); each file is deleted, and the deletion
synced, before the next is timed. Printed, and saved under ``bench/results/``: MiB/s (median,
min-max), and the median ``fsync`` in ms.
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.report import save_table, speed_cells
from bench.run import RESULTS_DIR, log, rotated
from portside.storage.direct_io import open_direct

WRITE_BYTES = 4 << 20


@dataclass
class DiskResult:
    """One way's speeds (MiB/s) and fsync times (seconds), over every round."""

    speeds: list[float] = field(default_factory=list)
    fsyncs: list[float] = field(default_factory=list)


def _write_file(path: Path, data: memoryview, piece: int, direct: bool, result: DiskResult) -> None:
    """Write ``data`` into a new file at ``path`` in ``WRITE_BYTES`` writes, fsyncing every ``piece`` bytes."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags, 0o600)
    try:
        started = time.perf_counter()
        for piece_start in range(0, len(data), piece):
            piece_end = min(piece_start + piece, len(data))
            for offset in range(piece_start, piece_end, WRITE_BYTES):
                chunk = data[offset : min(offset + WRITE_BYTES, piece_end)]
                while chunk:
                    written = os.pwrite(fd, chunk, offset)
                    chunk, offset = chunk[written:], offset + written
            synced = time.perf_counter()
            os.fsync(fd)
            result.fsyncs.append(time.perf_counter() - synced)
        result.speeds.append(len(data) / (1 << 20) / (time.perf_counter() - started))
    finally:
        os.close(fd)
        path.unlink()
        os.sync()  # the deletion's discards and journal commit land before the next way is timed


def direct_io_works(directory: Path) -> bool:
    """Whether files in ``directory`` open with ``O_DIRECT``, asked as Portside's storage asks it."""
    probe = directory / "direct-probe"
    probe.touch()
    try:
        fd = open_direct(probe)
        if fd is not None:
            os.close(fd)
        return fd is not None
    finally:
        probe.unlink()


def measure(directory: Path, size: int, piece: int, rounds: int) -> dict[str, DiskResult]:
    """Every way, ``rounds`` times, in rotating order."""
    buffer = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT wants
    buffer.write(os.urandom(size))
    data = memoryview(buffer)
    # Each way: whether it writes with O_DIRECT, and how many bytes go between fsyncs.
    ways: dict[str, tuple[bool, int]] = {}
    for direct in (True, False) if direct_io_works(directory) else (False,):
        kind = "direct" if direct else "buffered"
        ways[f"{kind}, one fsync"] = (direct, size)
        ways[f"{kind}, fsync per {piece >> 20} MiB piece"] = (direct, piece)
    results = {name: DiskResult() for name in ways}
    names = list(ways)
    try:
        for round_index in range(rounds):
            for name in rotated(names, round_index):
                direct, every = ways[name]
                _write_file(directory / "blob", data, every, direct, results[name])
    finally:
        data.release()
        buffer.close()
    return results


def render(results: dict[str, DiskResult], size: int, rounds: int) -> str:
    """A Markdown table of the results, with what was measured above it."""
    lines = [
        f"{size >> 20} MiB of fresh bytes written to a new file, in {WRITE_BYTES >> 20} MiB writes: "
        f"{rounds} rounds, ways in rotating order ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).",
        "",
        "| Written | MiB/s median | min\u2013max | fsync, ms median |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, result in results.items():
        lines.append(f"| {name} | {speed_cells(result.speeds)} | {1000 * statistics.median(result.fsyncs):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point: measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--piece-mib", type=int, default=8, help="bytes between fsyncs, like a PATCH")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where the files go (the bench's disk)")
    parser.add_argument("--quick", action="store_true", help="8 MiB in 2 MiB pieces, 1 round: checks that it works")
    args = parser.parse_args(argv)
    if args.quick:
        size, piece, rounds = 8 << 20, 2 << 20, 1
    else:
        size, piece, rounds = args.size_mib << 20, args.piece_mib << 20, args.rounds
    with tempfile.TemporaryDirectory(prefix="portside-disk-", dir=args.dir) as workdir:
        results = measure(Path(workdir), size, piece, rounds)
    table = render(results, size, rounds)
    print(table)
    if not args.quick:
        log(f"saved {save_table(RESULTS_DIR, 'disk', table)}")


if __name__ == "__main__":
    main()
