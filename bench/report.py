"""Aggregate runs into medians and ranges; render Markdown; save JSON."""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scenarios import Measurement, Scenario, Sizes
from bench.servers import DISTRIBUTION, PORTSIDE

SERVERS = (PORTSIDE, DISTRIBUTION)
SERVER_TITLES = {PORTSIDE: "Portside", DISTRIBUTION: "Distribution"}
# Above this many cores used by other processes during a run, the run is flagged in the notes.
BUSY_MACHINE = 0.25
MIN_OTHER_WINDOW = 1.0
BEGIN_MARK = "<!-- bench:results:begin -->"
END_MARK = "<!-- bench:results:end -->"


@dataclass
class RunRecord:
    """One scenario run against one server in one round: a measurement or an error."""

    scenario: str
    server: str
    round: int
    measurement: Measurement | None = None
    error: str | None = None
    #: Cores other processes kept busy just before the run started.
    foreign_load_before: float = 0.0
    #: How many times the run was measured (again when other processes got busy during it).
    attempts: int = 1


@dataclass
class Summary:
    """A scenario's runs on one server, reduced."""

    values: dict[str, list[float]] = field(default_factory=dict)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    loadgen_cpu: list[float] = field(default_factory=list)
    other_cores: list[float] = field(default_factory=list)
    peak_tree: int = 0
    peak_process: int = 0
    processes: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one successful run."""
        return bool(self.wall)


def summarise(records: list[RunRecord]) -> dict[tuple[str, str], Summary]:
    """Group by (scenario, server)."""
    out: dict[tuple[str, str], Summary] = {}
    for record in records:
        summary = out.setdefault((record.scenario, record.server), Summary())
        if record.measurement is None:
            summary.errors.append(f"round {record.round + 1}: {record.error}")
            continue
        m = record.measurement
        if record.attempts > 1:
            summary.notes.append(
                f"round {record.round + 1}: measured {record.attempts} times because other processes got busy; "
                "the quietest attempt is kept"
            )
        for key, value in m.metrics.items():
            summary.values.setdefault(key, []).append(value)
        summary.wall.append(m.wall_seconds)
        summary.cpu.append(m.server.cpu_seconds)
        summary.loadgen_cpu.append(m.loadgen_cpu)
        # CPU accounting ticks are 10 ms: below a second the share of other processes is noise.
        if m.wall_seconds >= MIN_OTHER_WINDOW:
            other = m.other_cpu / m.wall_seconds
            summary.other_cores.append(other)
            if other > BUSY_MACHINE:
                summary.notes.append(
                    f"round {record.round + 1}: other processes kept {other:.2f} cores busy during the run"
                )
        summary.peak_tree = max(summary.peak_tree, m.server.peak_rss_tree)
        summary.peak_process = max(summary.peak_process, m.server.peak_rss_process)
        summary.processes = max(summary.processes, m.server.processes)
        for note in m.notes:
            if note not in summary.notes:
                summary.notes.append(note)
    return out


def fmt(value: float) -> str:
    """Three significant figures, thousands separated."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell(values: list[float]) -> str:
    if not values:
        return "failed"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}\u2013{fmt(max(values))})"


def _other(values: list[float]) -> str:
    if not values:
        return "(run < 1 s)"
    return f"{fmt(statistics.median(values))} (max {fmt(max(values))})"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f}"


def ratio(portside: list[float], distribution: list[float], higher_is_better: bool) -> str:
    """Portside relative to Distribution such that above 1 means Portside is better."""
    if not portside or not distribution:
        return "n/a"
    p, d = statistics.median(portside), statistics.median(distribution)
    if p <= 0 or d <= 0:
        return "n/a"
    return f"{(p / d if higher_is_better else d / p):.2f}\u00d7"


def results_table(scenarios: list[Scenario], sizes: Sizes, summaries: dict[tuple[str, str], Summary]) -> list[str]:
    """The main table: one row per scenario metric."""
    lines = [
        "| Scenario | Metric | Better | Portside median (min\u2013max) | Distribution median (min\u2013max) "
        "| Ratio (>1: Portside better) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in scenarios:
        p = summaries.get((scenario.key, PORTSIDE), Summary())
        d = summaries.get((scenario.key, DISTRIBUTION), Summary())
        for spec in scenario.metrics:
            pv, dv = p.values.get(spec.key, []), d.values.get(spec.key, [])
            better = "higher" if spec.higher_is_better else "lower"
            formula = "P/D" if spec.higher_is_better else "D/P"
            caveat = " (see notes)" if p.notes or d.notes else ""
            lines.append(
                f"| {scenario.label(sizes)} | {spec.label} ({spec.unit}) | {better} | {_cell(pv)} | {_cell(dv)} "
                f"| {ratio(pv, dv, spec.higher_is_better)} ({formula}){caveat} |"
            )
    return lines


def resources_table(scenarios: list[Scenario], sizes: Sizes, summaries: dict[tuple[str, str], Summary]) -> list[str]:
    """Server CPU and memory, and the load generator's CPU, per scenario and server (medians over rounds)."""
    lines = [
        "| Scenario | Server | Timed s | Server CPU-s | Server cores busy | Peak RSS, tree (MiB) "
        "| Peak RSS, largest process (MiB) | Load-gen CPU-s | Load-gen cores busy | Other processes, cores busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in scenarios:
        for server in SERVERS:
            s = summaries.get((scenario.key, server))
            if s is None:
                continue
            if not s.ok:
                lines.append(f"| {scenario.label(sizes)} | {SERVER_TITLES[server]} | failed | | | | | | | |")
                continue
            wall, cpu, gen = (statistics.median(x) for x in (s.wall, s.cpu, s.loadgen_cpu))
            lines.append(
                f"| {scenario.label(sizes)} | {SERVER_TITLES[server]} | {fmt(wall)} | {fmt(cpu)} "
                f"| {fmt(cpu / wall) if wall else 'n/a'} | {_mib(s.peak_tree)} ({s.processes} proc) "
                f"| {_mib(s.peak_process)} | {fmt(gen)} | {fmt(gen / wall) if wall else 'n/a'} "
                f"| {_other(s.other_cores)} |"
            )
    return lines


def notes_lines(scenarios: list[Scenario], summaries: dict[tuple[str, str], Summary]) -> list[str]:
    """What the servers did differently, and every error."""
    lines: list[str] = []
    for scenario in scenarios:
        for server in SERVERS:
            s = summaries.get((scenario.key, server))
            if s is None:
                continue
            lines.extend(f"- `{scenario.key}`, {SERVER_TITLES[server]}: {note}" for note in s.notes)
            lines.extend(
                f"- `{scenario.key}`, {SERVER_TITLES[server]}: **error** {error.splitlines()[0]}" for error in s.errors
            )
    return lines


def render(
    scenarios: list[Scenario],
    sizes: Sizes,
    records: list[RunRecord],
    environment: dict[str, Any],
    rounds: int,
    quick: bool,
) -> str:
    """The Markdown block for the terminal and docs/performance.md."""
    summaries = summarise(records)
    head = [
        f"Run {environment['started']} UTC{' (quick smoke run: tiny sizes, not for comparison)' if quick else ''}; "
        f"{rounds} round(s), servers alternating Portside, Distribution within each scenario.",
        f"Machine: {environment['cpu']}, {environment['cores']} cores, {environment['memory_gib']} GiB RAM, "
        f"Linux {environment['kernel']}, {environment['filesystem']}; creating a file there cost "
        f"{environment.get('file_create_us', '?')} us of CPU before the servers started"
        f"{'; page cache dropped before the servers started' if environment.get('page_cache_dropped') else ''}.",
        f"Servers: {environment['portside']} with {environment['portside_workers']} workers, source "
        f"{environment['source']}; {environment['distribution']}.",
        "",
        "Medians over the rounds, with the range in brackets. The ratio puts Portside over Distribution for "
        '"higher is better" metrics (P/D) and Distribution over Portside for "lower is better" ones (D/P), '
        "so above 1 always means Portside did better.",
        "",
        *results_table(scenarios, sizes, summaries),
        "",
        "Resources during the timed part (medians over rounds; peak RSS is the highest sample of any round, "
        f"sampled every 50 ms; 'cores busy' is CPU-seconds / timed seconds, out of {environment['cores']}):",
        "",
        *resources_table(scenarios, sizes, summaries),
    ]
    notes = notes_lines(scenarios, summaries)
    if notes:
        head += ["", "Notes from the run:", "", *notes]
    return "\n".join(head) + "\n"


def write_markdown(path: Path, block: str) -> None:
    """Replace the marked block in ``path``, or write the block alone if the file has no markers."""
    wrapped = f"{BEGIN_MARK}\n{block}{END_MARK}"
    if path.exists():
        text = path.read_text()
        start, end = text.find(BEGIN_MARK), text.find(END_MARK)
        if 0 <= start < end:
            path.write_text(text[:start] + wrapped + text[end + len(END_MARK) :])
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Benchmark results\n\n{wrapped}\n")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Save everything measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")


def speed_cells(speeds: list[float]) -> str:
    """The median and the min-max of MiB/s figures, as two Markdown table cells."""
    return f"{statistics.median(speeds):,.0f} | {min(speeds):,.0f}\u2013{max(speeds):,.0f}"


def save_table(directory: Path, stem: str, table: str) -> Path:
    """Write a probe's Markdown table to ``directory/<stem>-<UTC time>.md``; the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = directory / f"{stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}.md"
    saved.write_text(table)
    return saved
