"""Resource accounting during one measured run: the server's process tree and the load generator.

Server: CPU-seconds (user + system) of every process in the tree rooted at the server's pid
(Granian's main process and its workers; Distribution's one process), and RSS sampled every
``interval`` seconds: the peak of the tree's sum and the peak of the largest single process.
RSS counts pages shared between processes once per process.

Load generator: this process's CPU, minus the sampler thread's own, plus the CPU of its
children that finished during the run (``wrk``), plus what worker processes report.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass

import psutil

SAMPLE_INTERVAL = 0.05


@dataclass
class TreeUsage:
    """What a server's process tree used during one run."""

    cpu_seconds: float
    peak_rss_tree: int
    peak_rss_process: int
    processes: int
    samples: int


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class TreeMonitor:
    """Sample a process tree in a background thread between :meth:`start` and :meth:`stop`."""

    def __init__(self, root_pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._peak_tree = 0
        self._peak_process = 0
        self._samples = 0
        self.thread_cpu = 0.0

    def _tree(self) -> list[psutil.Process]:
        try:
            root = self._procs.get(self.root_pid) or psutil.Process(self.root_pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        tree = []
        for proc in found:
            known = self._procs.setdefault(proc.pid, proc)  # keep one object per pid (it caches)
            tree.append(known)
        return tree

    def _sample(self) -> None:
        total = 0
        for proc in self._tree():
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    cpu = _cpu(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self._cpu_last[proc.pid] = cpu
            self._cpu_start.setdefault(proc.pid, 0.0)  # a process born during the run counts whole
            total += rss
            self._peak_process = max(self._peak_process, rss)
        self._peak_tree = max(self._peak_tree, total)
        self._samples += 1

    def _run(self) -> None:
        begin = time.thread_time()
        try:
            while not self._stop.wait(self.interval):
                self._sample()
        finally:
            self.thread_cpu = time.thread_time() - begin

    def start(self) -> None:
        """Record the tree's CPU so far and begin sampling RSS."""
        for proc in self._tree():
            try:
                self._cpu_start[proc.pid] = _cpu(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self._cpu_last = dict(self._cpu_start)
        self._sample()
        self._thread = threading.Thread(target=self._run, name=f"monitor-{self.root_pid}", daemon=True)
        self._thread.start()

    def stop(self) -> TreeUsage:
        """Stop sampling; one last sample gives the final CPU counters."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sample()
        cpu = sum(self._cpu_last[pid] - self._cpu_start.get(pid, 0.0) for pid in self._cpu_last)
        return TreeUsage(cpu, self._peak_tree, self._peak_process, len(self._cpu_last), self._samples)


@dataclass
class CpuSnapshot:
    """This process's and its reaped children's CPU-seconds at one moment."""

    self_cpu: float
    children_cpu: float

    @staticmethod
    def now() -> CpuSnapshot:
        """Take one."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return CpuSnapshot(own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime)


def machine_busy_seconds() -> float:
    """CPU-seconds all processes on the machine have used so far (every CPU, idle and I/O wait excluded)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0))


def foreign_load(exclude_pids: list[int], seconds: float = 1.0) -> float:
    """Cores kept busy over ``seconds`` by processes outside ``exclude_pids``' trees (this process is excluded)."""
    roots = [pid for pid in exclude_pids if psutil.pid_exists(pid)]

    def ours() -> float:
        total = 0.0
        for root in [os.getpid(), *roots]:
            try:
                proc = psutil.Process(root)
                for member in [proc, *proc.children(recursive=True)]:
                    total += _cpu(member)
            except psutil.NoSuchProcess:
                continue
        return total

    busy0, ours0 = machine_busy_seconds(), ours()
    time.sleep(seconds)
    busy1, ours1 = machine_busy_seconds(), ours()
    return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / seconds
