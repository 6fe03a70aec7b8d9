"""Where Portside spends its time: py-spy on every server process while a scenario runs.

    python -m bench.profile [--scenarios manifest_get,push_monolithic,small_images] [--seconds 10] [--quick]

Starts Portside alone (fresh data dir), does the scenarios' setup, then for each scenario
attaches ``py-spy record --subprocesses`` to the server's main process, runs the scenario
repeatedly for at least ``--seconds``, stops py-spy with SIGINT, and summarises the
speedscope profile: the functions with the most samples on top of the stack ("self") and
the functions most often anywhere on the stack ("total"), as shares of all non-idle samples
of all server threads. Profiles are saved under ``bench/results/``; open them at speedscope.app.
"""

from __future__ import annotations

import argparse
import json
import linecache
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.run import RESULTS_DIR, log, select_scenarios
from bench.scenarios import Bench, Scenario, Sizes, Target, setup
from bench.servers import PORTSIDE, Server

DEFAULT_SCENARIOS = "manifest_get,push_monolithic,small_images"
# Frames that are on nearly every stack and say nothing about where the work is.
PLUMBING = (
    "asyncio/",
    "threading.py",
    "concurrent/futures/thread.py",
    "<frozen ",
    "contextlib.py",
    "granian/",
    "multiprocessing/",
    "typer/",
    "click/",
    "portside/cli.py",
    "bin/portside",
    "_connection_worker_thread",
)


_WAIT_LINE = re.compile(r"\.(get|wait|select|acquire|join|poll)\(|\bsleep\(")


@dataclass
class FrameStats:
    """Sampled seconds per function (on top of the stack, and anywhere on it) and per thread role."""

    seconds: float
    self_counts: Counter[str]
    total_counts: Counter[str]
    roles: Counter[str]
    packages: Counter[str]


def py_spy() -> str:
    """The py-spy next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def _frame_name(frame: dict[str, Any], with_line: bool = False) -> str:
    path = str(frame.get("file", ""))
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[-1]
            break
    if path and with_line and frame.get("line"):
        path = f"{path}:{frame['line']}"
    return f"{frame.get('name', '?')} ({path})" if path else str(frame.get("name", "?"))


def thread_role(profile_name: str) -> str:
    """What a thread does, from py-spy's 'Process P Thread T "name"' profile name."""
    name = profile_name.split('"', 1)[1].rstrip('"') if '"' in profile_name else ""
    if name == "MainThread":
        return "event loop (worker main thread)"
    if "_connection_worker_thread" in name:
        return "aiosqlite connection threads (SQLite calls)"
    if name.startswith("asyncio_"):
        return "asyncio.to_thread pool (file I/O, hashing)"
    if not name:
        return "Granian's threads (Rust runtime: HTTP, sockets, calls into the loop)"
    return f"thread {name!r}"


def package_of(frame: dict[str, Any]) -> str:
    """``sqlalchemy``, ``starlette``, ``portside``…, or ``stdlib:asyncio``; C frames by library."""
    path = str(frame.get("file", ""))
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/src/portside/" in path:
        return "portside"
    if "/lib/python3." in path:
        rest = path.split("/lib/python3.", 1)[1].split("/", 1)[-1]
        return "stdlib:" + rest.split("/", 1)[0].removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


def _is_pseudo(name: str) -> bool:
    return name.startswith(("process ", "thread "))


def _waiting(frame: dict[str, Any]) -> bool:
    """Whether a leaf frame is a thread blocked waiting (queue get, lock, condition, epoll), judged by its source."""
    line = linecache.getline(str(frame.get("file", "")), int(frame.get("line") or 0))
    return bool(_WAIT_LINE.search(line))


def analyse(profile_path: Path, drop_waiting: bool = True) -> FrameStats:
    """Add up every sampled stack of every thread in a speedscope file written by py-spy.

    py-spy's own idle detection lets threads through that are blocked in a queue or lock
    (aiosqlite's connection threads waiting for work, the to_thread pool): with
    ``drop_waiting`` a sample whose innermost Python frame is such a wait is left out.
    """
    document = json.loads(profile_path.read_text())
    raw = document["shared"]["frames"]
    frames = [_frame_name(frame) for frame in raw]
    lines = [_frame_name(frame, with_line=True) for frame in raw]
    waiting = [_waiting(frame) for frame in raw]
    packages_of = [package_of(frame) for frame in raw]
    packages: Counter[str] = Counter()
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    seconds = 0.0
    for profile in document["profiles"]:
        role = thread_role(profile["name"])
        weights = profile.get("weights") or [1.0] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=False):
            real = [index for index in stack if not _is_pseudo(frames[index])]
            if drop_waiting and real and waiting[real[-1]]:
                continue
            names = [frames[index] for index in real]
            seconds += weight
            roles[role] += weight
            self_counts[lines[real[-1]] if real else f"(no Python frame: {role})"] += weight
            packages[packages_of[real[-1]] if real else "(no Python frame)"] += weight
            for name in set(names):
                total_counts[name] += weight
    return FrameStats(seconds, self_counts, total_counts, roles, packages)


def summary_lines(title: str, stats: FrameStats, top: int) -> list[str]:
    """Markdown lists of the top frames."""
    if not stats.seconds:
        return [f"#### {title}", "", "(no samples)", ""]

    def pct(value: float) -> str:
        return f"{100 * value / stats.seconds:.1f}%"

    lines = [
        f"#### {title}",
        "",
        f"{stats.seconds:.1f} s of non-idle samples over all server threads. By thread:",
        "",
        *(f"- {pct(value)} {role}" for role, value in stats.roles.most_common()),
        "",
        "Self by package (whose code was innermost):",
        "",
        *(f"- {pct(value)} {name}" for name, value in stats.packages.most_common(8)),
        "",
        "Self (innermost Python line; time in a C call counts for the line that made it):",
        "",
        *(f"- {pct(value)} {name}" for name, value in stats.self_counts.most_common(top)),
        "",
        "Total (function anywhere on the stack; event-loop, thread and server-startup plumbing left out):",
        "",
    ]
    interesting = [(n, v) for n, v in stats.total_counts.most_common() if not any(p in n for p in PLUMBING)]
    lines += [f"- {pct(value)} {name}" for name, value in interesting[:top]]
    return [*lines, ""]


def record(
    spy: str, args: argparse.Namespace, scenario: Scenario, bench: Bench, target: Target, out: Path, gil: bool
) -> int:
    """Run ``scenario`` repeatedly under ``py-spy record`` for ``args.seconds``; how many runs."""
    argv = [
        spy,
        "record",
        "--pid",
        str(target.server.pid),
        "--subprocesses",
        # --native needs the process paused while its stack is read.
        *(["--native"] if args.native else ["--nonblocking"]),
        *(["--gil"] if gil else []),
        "--rate",
        str(args.rate),
        "--format",
        "speedscope",
        "--output",
        str(out),
    ]
    spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # let py-spy attach to every process
    started, runs = time.monotonic(), 0
    try:
        while time.monotonic() - started < args.seconds or runs == 0:
            measurement = scenario.run(bench, target, runs)
            runs += 1
            log(f"{scenario.key} run {runs} under the profiler: {measurement.metrics}")
    finally:
        spy_proc.send_signal(signal.SIGINT)
        try:
            _, err = spy_proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy_proc.kill()
            _, err = spy_proc.communicate()
    if not out.exists():
        raise SystemExit(f"py-spy wrote no profile: {err.decode(errors='replace')}")
    log(f"profile saved to {out}")
    return runs


MODES = {
    "all": "every thread that is not waiting: where the time goes, disk and SQLite included",
    "gil": "only the thread holding the GIL: where the Python CPU goes",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    parser.add_argument("--seconds", type=float, default=10.0, help="profile each scenario at least this long")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="all,gil", help="all: every busy thread; gil: the GIL holder only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument("--native", action="store_true", help="also sample C frames (py-spy --native)")
    parser.add_argument("--analyse", nargs="+", type=Path, help="only summarise these speedscope files")
    args = parser.parse_args(argv)
    if args.analyse:
        print("\n".join(line for path in args.analyse for line in summary_lines(path.name, analyse(path), args.top)))
        return 0
    scenarios = select_scenarios(args.scenarios)
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if any(mode not in MODES for mode in modes):
        raise SystemExit(f"--modes takes {', '.join(MODES)}")
    spy = py_spy()
    sizes = Sizes.quick() if args.quick else Sizes()
    sizes = Sizes(**{**sizes.__dict__, "duration": args.seconds})
    workdir = Path(tempfile.mkdtemp(prefix="portside-profile-"))
    server = Server(PORTSIDE, workdir / PORTSIDE, workers=args.workers)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    report: list[str] = []
    try:
        server.start()
        target = Target(server)
        bench = Bench(sizes)
        setup(bench, target, {need for s in scenarios for need in s.needs}, lambda m: log(f"  setup: {m}"))
        for scenario in scenarios:
            for mode in modes:
                out = RESULTS_DIR / f"profile-{stamp}-{scenario.key}-{mode}.speedscope.json"
                runs = record(spy, args, scenario, bench, target, out, gil=mode == "gil")
                title = f"{scenario.label(sizes)}: {mode} ({MODES[mode]}; {runs} run(s))"
                report += summary_lines(title, analyse(out), args.top)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(report)
    print(text)
    (RESULTS_DIR / f"profile-{stamp}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
