"""Recompute the figures of the committed records from the committed run data, and compare.

A record is README.md, benchmarks/results/*.md or docs/results/**/README.md. Its figures are checked
in three ways: a `Figure` (record_figures.py) names one value as the record writes it and the function
that recomputes it, within the rounding written (the registry: `_figures` here, and the readings'
figures in record_prose.py); a `TableCheck` (record_tables.py) recomputes a whole table from Parquet
run folders, benchmark JSON or CSV and compares it cell by cell; search_bench.md's printouts, verdict
and oracle-bound lines are regenerated from the CSVs its bench wrote (record_search.py). A figure
whose run data was not kept is marked beside it in its record ("not recomputable", "from outside",
with the source); `INVENTORY` lists, per record, the data behind it (None: none kept, and the record
says so at its top).

Coverage: every number of every record (record_numbers.py says which are figures) is checked, marked
or a listed setting (`SETTINGS`, with its reason); one that is none of these is a coverage problem, and
the test fails on it (a new figure comes with its check or its marker).

    python benchmarks/recompute.py                 # every figure and table: ok or MISMATCH; coverage
    python benchmarks/recompute.py --uncovered     # … and each figure neither checked nor marked
    python benchmarks/recompute.py --replication   # the tables of docs/results/replication/README.md

Reads files only (never launches); exit 1 on any mismatch. tests/core/test_recompute.py runs it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling modules, when loaded by path
import record_numbers  # noqa: E402
import record_search  # noqa: E402
from record_data import RESULTS, ROOT, record_text  # noqa: E402
from record_figures import (  # noqa: E402
    COMMON_STEPS,
    MODELS,
    REP_STEPS,
    REPLICATION_BATCHES,
    Figure,
    NotRecomputable,
    batch_saving,
    busy_vs_distance_rank,
    cv_below_window_cv_share,
    cv_rank,
    fig,
    host_ratio,
    meter_cv_percent,
    per_waveform,
    rank_correlation,
    rounding,
    scaling_speedup,
    steps_fit,
)
from record_prose import prose_figures  # noqa: E402
from record_tables import LINES, TABLES, TableCheck, rendered  # noqa: E402


@functools.cache
def _figures() -> list[Figure]:
    out: list[Figure] = []
    h100_readme = "docs/results/h100/README.md"
    rep_readme = "docs/results/replication/README.md"
    steps_run, batch_run = "docs/results/h100/paper-steps", "docs/results/h100/paper-batch"
    rep_steps, rep_batch = (
        "docs/results/replication/replication-steps",
        "docs/results/replication/replication-batch",
    )
    # docs/results/h100: J/step per model with its CI, all steps 10–200
    h100_slopes = {
        "audioldm": ("6.32", "0.29"),
        "audioldm2": ("12.21", "1.26"),
        "make-an-audio": ("3.88", "0.30"),
        "make-an-audio-2": ("1.70", "0.11"),
        "stable-audio-open": ("15.45", "0.62"),
        "tango": ("10.30", "0.58"),
        "tango2": ("8.57", "0.45"),
    }
    for m, (slope, ci) in h100_slopes.items():
        out.append(fig(h100_readme, f"{m} J/step", slope, lambda m=m: steps_fit(steps_run, m)["slope"]))
        out.append(fig(h100_readme, f"{m} J/step CI", ci, lambda m=m: steps_fit(steps_run, m)["slope_ci95"]))
    h100_batch10 = {
        "audioldm": "0.23",
        "audioldm2": "0.18",
        "make-an-audio": "0.27",
        "make-an-audio-2": "0.53",
    }
    h100_batch10 |= {"stable-audio-open": "0.68", "tango": "0.51", "tango2": "0.48"}
    for m, ratio in h100_batch10.items():
        out.append(
            fig(h100_readme, f"{m} batch 10 / batch 1", ratio, lambda m=m: batch_saving(batch_run, m, 10))
        )
    # docs/results/replication: the fits on one card, the earlier ones at matching steps, their ratio
    for m in MODELS:
        new = functools.partial(steps_fit, rep_steps, m)
        old = functools.partial(steps_fit, steps_run, m, COMMON_STEPS)
        for name, fn in [
            ("J/step", lambda new=new: new()["slope"]),
            ("J/step CI", lambda new=new: new()["slope_ci95"]),
            ("earlier J/step at steps 10–100", lambda old=old: old()["slope"]),
            ("earlier J/step CI at steps 10–100", lambda old=old: old()["slope_ci95"]),
            ("replication / earlier J/step", lambda new=new, old=old: new()["slope"] / old()["slope"]),
            ("batch 4 / batch 1", lambda m=m: batch_saving(rep_batch, m, 4)),
        ]:
            out.append(Figure(rep_readme, f"{m} {name}", "", fn, 0.0))
    for name, fn in REPLICATION_SUMMARY.items():
        out.append(Figure(rep_readme, name, "", fn, 0.0))
    # the meter's precision: both H100 runs, wherever it is quoted
    for record in ("README.md", "benchmarks/results/meter_precision_h100.md"):
        out.append(
            fig(
                record,
                "meter CV, first H100",
                "0.28",
                lambda: meter_cv_percent("meter_precision_h100_ticks.json"),
            )
        )
        out.append(
            fig(
                record,
                "meter CV, second H100",
                "0.44",
                lambda: meter_cv_percent("meter_precision_h100_ticks_b.json"),
            )
        )
    # docs/results/h200/runtime: AudioLDM, eager against CUDA graphs (J per waveform, 95 % CI)
    runtime_readme, runtime_run = (
        "docs/results/h200/runtime/README.md",
        "docs/results/h200/runtime/runtime-audioldm-h200",
    )
    runtime = {
        (1, 25): ("177.3", "33.1", "42.7"),
        (1, 100): ("680.3", "20.7", "132.2"),
        (4, 25): ("60.3", "2.6", "25.6"),
        (4, 100): ("201.3", "54.6", "78.5"),
    }
    for (batch, steps), (eager, eager_ci, graphs) in runtime.items():
        cfg = {"model": "audioldm", "batch_size": batch, "steps": steps}
        for name, written, compile_, i in (
            ("eager J per waveform", eager, "none", 0),
            ("eager J per waveform CI", eager_ci, "none", 1),
            ("reduce-overhead J per waveform", graphs, "reduce-overhead", 0),
        ):
            out.append(
                fig(
                    runtime_readme,
                    f"audioldm b{batch} s{steps} {name}",
                    written,
                    lambda cfg=cfg, c=compile_, i=i: per_waveform(runtime_run, **cfg, compile=c)[i],
                )
            )
    # the 2×H200 scaling: checked against its summary JSON only (its run folders were not kept)
    for placement, wall, sweep in (("pack", "1.91", "1.98"), ("spread", "1.86", "1.93")):
        for record in ("benchmarks/results/scaling_gpu.md", "README.md"):
            out.append(
                fig(
                    record,
                    f"{placement} speed-up, wall",
                    wall,
                    lambda p=placement: scaling_speedup("scaling_gpu.json", p, 2),
                )
            )
            out.append(
                fig(
                    record,
                    f"{placement} speed-up, sweep phase",
                    sweep,
                    lambda p=placement: scaling_speedup("scaling_gpu.json", p, 2, "sweep_s"),
                )
            )
    out += prose_figures() + record_search.reading_figures()
    return [f for f in out if f.written or f.record != rep_readme] + _replication_written(
        [f for f in out if f.record == rep_readme and not f.written]
    )


# The replication reading's summary figures, written there as `<!-- figure: name = value -->` lines
# beside the prose that quotes them, with two decimals.
REPLICATION_SUMMARY: dict[str, Callable[[], float]] = {
    "Spearman ρ of J/step": rank_correlation,
    "host ratio, old GPU-2d873470": lambda: host_ratio("GPU-2d873470"),
    "host ratio, old GPU-7201daf1": lambda: host_ratio("GPU-7201daf1"),
    "latency ratio, old GPU-2d873470": lambda: host_ratio("GPU-2d873470", "latency_s"),
    "latency ratio, old GPU-7201daf1": lambda: host_ratio("GPU-7201daf1", "latency_s"),
    "power ratio, old GPU-2d873470": lambda: host_ratio("GPU-2d873470", "avg_power_w"),
    "power ratio, old GPU-7201daf1": lambda: host_ratio("GPU-7201daf1", "avg_power_w"),
    "Spearman ρ busy fraction vs |log ratio|": busy_vs_distance_rank,
    "share energy CV ≤ window CV": lambda: cv_below_window_cv_share(REP_STEPS),
    "Spearman ρ energy CV vs window CV": lambda: cv_rank(REP_STEPS),
}


def _replication_written(figures: list[Figure]) -> list[Figure]:
    """The replication figures with the values the reading writes: parsed from its tables, so that the
    check compares the committed text, not a copy of it here."""
    text = (ROOT / "docs/results/replication/README.md").read_text()
    tables = _replication_values(text)
    out = []
    for f in figures:
        written = tables.get(f.name)
        if written is None:
            raise KeyError(f"docs/results/replication/README.md does not state {f.name!r}")
        out.append(Figure(f.record, f.name, written, f.compute, rounding(written)))
    return out


def _replication_values(text: str) -> dict[str, str]:
    """Figure name → written value, from the reading's per-model table and its `figure: value` lines."""
    out: dict[str, str] = {}
    header = ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| model |"):
            header = line
        if line.startswith("<!-- figure: "):
            name, value = line.removeprefix("<!-- figure: ").removesuffix(" -->").rsplit("=", 1)
            out[name.strip()] = value.strip()
        if not line.startswith("| ") or cells[0] not in MODELS:
            continue
        m = cells[0]
        if "J/step, replication" in header:
            new, new_ci = (v.strip() for v in cells[1].split("±"))
            old, old_ci = (v.strip() for v in cells[2].split("±"))
            out |= {
                f"{m} J/step": new,
                f"{m} J/step CI": new_ci,
                f"{m} earlier J/step at steps 10–100": old,
                f"{m} earlier J/step CI at steps 10–100": old_ci,
                f"{m} replication / earlier J/step": cells[3],
            }
        elif "batch 4 / batch 1" in header:
            out[f"{m} batch 4 / batch 1"] = cells[4]
    return out


NOT_RECOMPUTABLE = [
    NotRecomputable(
        "benchmarks/results/scaling_gpu.md",
        "the 2×H200 speed-ups (1.91× pack, 1.86× spread), 105/105 rows ok, the GPU effect",
        "benchmarks/scaling.py of 2026-11-30 wrote its run folders to a temporary directory, since deleted; "
        "only scaling_gpu.json (its summary) was kept",
    ),
    NotRecomputable(
        "README.md",
        "the 2×H200 speed-ups (1.91×, 1.86×, 1.98×, 1.93×)",
        "benchmarks/results/scaling_gpu.md (run folders not kept)",
    ),
]

# Every figure-bearing record → the committed data behind it (paths from the repository root; globs
# allowed), or None where no data file was kept: its figures are as written, from the run's output,
# and the record says so at its top (coverage_problems checks it).
INVENTORY: dict[str, tuple[str, ...] | None] = {
    "README.md": ("benchmarks/results/*.json", "docs/results/*/*/results.parquet"),
    "docs/results/h100/README.md": (
        "docs/results/h100/paper-steps/results.parquet",
        "docs/results/h100/paper-batch/results.parquet",
    ),
    "docs/results/replication/README.md": (
        "docs/results/replication/replication-steps/results.parquet",
        "docs/results/replication/replication-batch/results.parquet",
    ),
    "docs/results/h200/runtime/README.md": ("docs/results/h200/runtime/*/results.parquet",),
    "benchmarks/results/meter_precision_h100.md": ("benchmarks/results/meter_precision_h100*.json*",),
    "benchmarks/results/scaling_gpu.md": ("benchmarks/results/scaling_gpu.json",),  # summary only
    "benchmarks/results/scaling_cpu.md": ("benchmarks/results/scaling_cpu.json",),
    "benchmarks/results/scaling_cpu_run1.md": ("benchmarks/results/scaling_cpu_run1.json",),
    "benchmarks/results/scaling_noop_cpu.md": ("benchmarks/results/scaling_noop_cpu.json",),
    "benchmarks/results/scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.md": (
        "benchmarks/results/scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.json",
    ),
    "benchmarks/results/cluster_scale_noop_cpu.md": ("benchmarks/results/cluster_scale_noop_cpu.json",),
    "benchmarks/results/doctor_h200.md": ("benchmarks/results/doctor_h200.json",),
    "benchmarks/results/orchestrator_overhead_audioldm_random_h100.md": (
        "benchmarks/results/orchestrator_overhead_audioldm_random_h*.json",
    ),
    "benchmarks/results/orchestrator_overhead_noop_tiny_cpu.md": (
        "benchmarks/results/orchestrator_overhead_noop_tiny_cpu.json",
    ),
    "benchmarks/results/prefetch_cpu.md": ("benchmarks/results/prefetch_cpu.json",),
    "benchmarks/results/ray_start_cpu.md": ("benchmarks/results/ray_start_cpu.json",),
    "benchmarks/results/launch_cpu.md": ("benchmarks/results/launch_cpu/*.json",),
    "benchmarks/results/resume_driver_cpu.md": ("benchmarks/results/resume_driver_cpu.json",),
    "benchmarks/results/thread_share_cpu.md": ("benchmarks/results/thread_share_cpu.txt",),
    "benchmarks/results/suite_cpu_by_process.md": ("benchmarks/results/suite_cpu_by_process/*.json",),
    "benchmarks/results/reaper_stand_down.md": ("benchmarks/results/reaper_stand_down.txt",),
    "benchmarks/results/search_bench.md": ("benchmarks/results/search_bench_*.csv",),
    "benchmarks/results/runtime_gross_net_h200.md": ("docs/results/h200/runtime/*/results.parquet",),
    "benchmarks/results/adapters_fullsize_h100.md": None,
    "benchmarks/results/ctrl_c_cpu.md": None,
    "benchmarks/results/driver_kill_leftovers.md": None,
    "benchmarks/results/fault_injection.md": None,
    "benchmarks/results/gpu_tests_h100.md": None,
    "benchmarks/results/gpu_host_suite.md": None,
    "benchmarks/results/suite_time_cpu.md": None,
    "benchmarks/results/launch_overhead_cpu.md": None,
    "benchmarks/results/hostile_inputs.md": None,
    "benchmarks/results/tiny_audio_levels.md": None,
    "benchmarks/results/cli_in_process_cpu.md": None,
}


def figure_records() -> list[str]:
    """Every record that states figures: README.md, benchmarks/results/*.md, docs/results/**/README.md."""
    # search_bench_reading.md is a part of search_bench.md, which benchmarks/search_bench.py writes with it
    parts = {RESULTS / "search_bench_reading.md"}
    found = [
        "README.md",
        *(p for p in RESULTS.glob("*.md") if p not in parts),
        *(ROOT / "docs/results").rglob("README.md"),
    ]
    return sorted(str(Path(p).relative_to(ROOT)) if Path(p).is_absolute() else p for p in found)


def inventory_problems() -> list[str]:
    """A record missing from INVENTORY, or an inventory entry whose data is not in the repository."""
    problems = [f"{r}: not in the inventory" for r in figure_records() if r not in INVENTORY]
    for record, data in INVENTORY.items():
        if not (ROOT / record).exists():
            problems.append(f"{record}: in the inventory, not in the repository")
        for pattern in data or ():
            if not any(ROOT.glob(pattern)):
                problems.append(f"{record}: no file matches {pattern}")
    return problems


@functools.cache
def check() -> tuple[tuple[Figure, float, bool], ...]:
    return tuple((f, *f.check()) for f in _figures())


def _rendered_replication(header: str) -> Callable[[], list[list[str]]]:
    return lambda: rendered(replication_tables(), header)


ALL_TABLES: list[TableCheck] = [
    *TABLES,
    *(
        TableCheck("docs/results/replication/README.md", header, _rendered_replication(header))
        for header in (
            "| model | J/step, replication",
            "| model | 10 steps",
            "| model | batch 1 | batch 2 | batch 4",
        )
    ),
]


@functools.cache
def table_checks() -> tuple[tuple[TableCheck, int, frozenset[tuple[int, int]], tuple[str, ...]], ...]:
    """Each table check's result: (check, the table's index in its record, cells compared, problems)."""
    out = []
    for t in ALL_TABLES:
        index, cells, problems = t.check()
        out.append((t, index, frozenset(cells), tuple(problems)))
    return tuple(out)


@functools.cache
def printout_checks() -> tuple[frozenset[tuple[str, int, int]], tuple[str, ...]]:
    """The printed tables of PRINTOUTS records: ((record, line, token) compared, problems)."""
    checked, problems = record_search.printouts()
    return frozenset(checked), tuple(problems)


@functools.cache
def line_checks() -> tuple[frozenset[tuple[str, int]], tuple[str, ...]]:
    """The prose lines regenerated from data (record_tables.LINES, search_bench.md's verdict and bound
    lines): ((record, line) that agree, problems)."""
    agree, found_bullets = record_search.bullet_lines()
    problems = list(found_bullets)
    for c in LINES:
        line, found = c.check()
        problems += found
        if not found:
            agree.add((c.record, line))
    return frozenset(agree), tuple(problems)


# Numbers in a record's prose that are settings, thresholds or specifications rather than measured
# figures: record → {digits as written: why}. Every other figure is checked or marked.
SETTINGS: dict[str, dict[str, str]] = {
    "benchmarks/results/meter_precision_h100.md": {
        "0.1": "the counter's tick or the power reading's delay, s (the meter's settings)",
        "2.5": "AudioLDM's guidance (the workload)",
        "40": "a thinned in-window sampling interval, ms (a setting replayed)",
        "60": "a thinned in-window sampling interval, ms (a setting replayed)",
        "80": "an example: a tick's energy at 800 W, J; and the share of gaps between two quantiles, %",
        "800": "the example's power, W",
    },
    "benchmarks/results/cluster_scale_noop_cpu.md": {
        "1": "steps 1–100 (the sweep)",
        "100": "steps 1–100 × 100 guidance values (the sweep)",
        "0.1": "a trial's latency, ms (the sweep's step time × steps)",
        "10": "a trial's latency, ms (the sweep's step time × steps)",
    },
    "benchmarks/results/orchestrator_overhead_audioldm_random_h100.md": {
        "50": "the goal per trial, ms",
        "1.05": "the goal for the launch over a bare loop",
        "700": "the card's power limit, W",
    },
    "benchmarks/results/orchestrator_overhead_noop_tiny_cpu.md": {
        "1.6": "a trial's latency, s (steps 40–89 × 40 ms: the sweep)",
        "3.6": "a trial's latency, s (the sweep)",
        "40": "steps 40–89 × 40 ms (the sweep)",
        "89": "steps 40–89 (the sweep)",
    },
    "benchmarks/results/scaling_cpu.md": {
        "1.63": "a configuration's latency, s (steps 100–163 × 0.01 s: the sweep)",
        "5": "a share of a sweep the fixed cost should stay below, %",
    },
    "benchmarks/results/doctor_h200.md": {
        "18": "the square wave's burst, ms (a setting of check 2)",
        "100": "the counter's tick, ms (measured in check 1's row)",
        "0.25": "check 2's tolerance",
        "50": "the old statistic's range, %",
        "0.01": "the old statistic's p threshold",
    },
    "docs/results/h200/runtime/README.md": {"2.11": "torch's version", "700": "the card's power cap, W"},
    "README.md": {
        "8.9": "the compute capability fp8 needs (a GPU's specification)",
        "100": "the NVML counter's tick, ms (its specification; measured in the doctor's record)",
        "0.9": "the report's launch-bound threshold",
        "95": "the confidence level, %",
        "25": "the doctor's square wave's duty, %",
        "0.25": "the doctor's coverage tolerance",
        "4": "what a part-time counter would read (a thought experiment)",
        "60": "a cooldown setting, °C",
        "10": "the CPU estimate's watts per busy core (a setting)",
        "2": "2 × 500 rows (FAD∞'s subset sizes)",
        "1e-4": "the parity tests' tolerance",
        "6.17": "an example: the synthetic table of tests/analysis/test_analysis_fronts.py",
        "0.20": "the same example",
        "0.290": "the same example",
        "0.020": "the same example",
        "1.36": "the same example",
        "0.05": "the same example",
        "5": "a batch shape (5×2, 2×5)",
        "1": "a batch shape (1×10)",
        "0.99": "the search bench's target share of the hypervolume",
        "2.97": "the tiny Stable Audio's longest clip, from its configuration (256 latents × 512 samples)",
        "8": "the tiny VAE's hop factors (8 × 8 × 8)",
        "44.1": "Stable Audio's sampling rate, kHz",
    },
    "benchmarks/results/search_bench.md": {
        "0.99": "the target share of the hypervolume",
        "0.1": "a budget (share of the grid's energy)",
        "0.3": "a budget (share of the grid's energy)",
        "1.5": "the search's cap on an extrapolated improvement (analysis/search.py)",
        "1.96": "the normal quantile of a 95 % CI (analysis/search.py's pooled_ci)",
        "0.95": "the share of the hypervolume energy_to_hv95 is taken at (analysis/search_replay.py)",
    },
}
# records whose fenced blocks are a program's printed tables (figures), not code
PRINTOUTS = {"benchmarks/results/search_bench.md"}
# records whose prose figures are each checked by a check of their own (a registered figure, a line
# regenerated from data) or marked: the same digits checked in a table or printout elsewhere in the
# record do not cover them (with many near-equal fractions, equal digits are often another figure)
OWN_CHECK_ONLY = {"benchmarks/results/search_bench.md"}


@dataclass(frozen=True)
class Coverage:
    record: str
    checked: int  # recomputed by a figure, a table or a printout check
    marked: int  # in a section (or a record) that says they are not recomputable, or from outside
    settings: int  # listed in SETTINGS
    uncovered: tuple[record_numbers.Number, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.checked + self.marked + self.settings + len(self.uncovered)


def coverage_problems() -> list[str]:
    """A record with a figure neither checked nor marked; a record without data not marked."""
    problems = []
    for record in figure_records():
        c = coverage(record)
        if c.uncovered:
            first = c.uncovered[0]
            problems.append(
                f"{record}: {len(c.uncovered)} figures neither checked nor marked, the first "
                f"{first.text} on line {first.line}"
            )
        if INVENTORY.get(record, ()) is None and not record_numbers.sections(record_text(record))[0].marked:
            problems.append(
                f"{record}: no data kept, and its top does not say its figures are not recomputable"
            )
    return problems


def coverage(record: str) -> Coverage:
    """Every figure-bearing number of a record: checked, marked, a listed setting, or uncovered. A prose
    number counts as checked where the same digits are checked elsewhere in the record (a reading that
    quotes its table), except in `OWN_CHECK_ONLY` records."""
    text = record_text(record)
    numbers = record_numbers.numbers(record, text, printouts=record in PRINTOUTS)
    cells = {(i, r, c) for t, i, done, _ in table_checks() if t.record == record for r, c in done}
    tokens = {(line, col) for rec, line, col in printout_checks()[0] if rec == record}
    secs = record_numbers.sections(text)
    whole = INVENTORY.get(record, ()) is None and secs[0].marked  # a record with no data, marked at the top
    marked_lines = record_numbers.marked_lines(text)
    settings = SETTINGS.get(record, {})
    checked, marked, listed, uncovered = set(), 0, 0, []
    for k, n in enumerate(numbers):
        in_line = n.table is None and n.col is None and (record, n.line) in line_checks()[0]
        if (n.table, n.row, n.col) in cells or (n.table is None and (n.line, n.col) in tokens) or in_line:
            checked.add(k)
    verified = {numbers[k].num for k in checked}
    figures = {f.written.lstrip("−-+") for f in _figures() if f.record == record}
    for k, n in enumerate(numbers):
        if k in checked:
            continue
        quotes = n.table is None and n.col is None and n.num in verified and record not in OWN_CHECK_ONLY
        if quotes or n.num in figures:
            checked.add(k)
        elif whole or n.line in marked_lines:
            marked += 1
        elif n.num in settings:
            listed += 1
        else:
            uncovered.append(n)
    return Coverage(record, len(checked), marked, listed, tuple(uncovered))


def record_problems() -> list[str]:
    """What the records themselves get wrong: a registered value they no longer state, a figure from a
    run not kept that is not marked so."""
    problems = []
    for f in _figures():
        if f.written not in (ROOT / f.record).read_text():
            problems.append(f"{f.record}: {f.name} {f.written} is not written there")
    for n in NOT_RECOMPUTABLE:
        if n.marker not in (ROOT / n.record).read_text():
            problems.append(f"{n.record}: {n.figures} not marked {n.marker!r} ({n.source})")
    return problems


@functools.cache
def replication_tables() -> str:
    """The per-model tables of docs/results/replication/README.md, from the run folders."""
    rep_steps, steps_run = "docs/results/replication/replication-steps", "docs/results/h100/paper-steps"
    rep_batch = "docs/results/replication/replication-batch"
    lines = [
        "| model | J/step, replication (95 % CI) | J/step, earlier H100 at steps 10–100 (95 % CI) | ratio | R² |",
        "|---|---|---|---|---|",
    ]
    for m in MODELS:
        new, old = steps_fit(rep_steps, m), steps_fit(steps_run, m, COMMON_STEPS)
        lines.append(
            f"| {m} | {new['slope']:.2f} ± {new['slope_ci95']:.2f} | {old['slope']:.2f} ± {old['slope_ci95']:.2f} "
            f"| {new['slope'] / old['slope']:.2f} | {new['r2']:.3f} |"
        )
    lines += [
        "",
        "| model | " + " | ".join(f"{s} steps" for s in COMMON_STEPS) + " |",
        "|---|---|---|---|---|",
    ]
    for m in MODELS:
        cells = [per_waveform(rep_steps, m, steps=s) for s in COMMON_STEPS]
        lines.append(f"| {m} | " + " | ".join(f"{a:.0f} ± {c:.0f}" for a, c, _ in cells) + " |")
    lines += ["", "| model | batch 1 | batch 2 | batch 4 | batch 4 / batch 1 |", "|---|---|---|---|---|"]
    for m in MODELS:
        cells = [per_waveform(rep_batch, m, batch_size=b) for b in REPLICATION_BATCHES]
        lines.append(
            f"| {m} | "
            + " | ".join(f"{a:.0f} ± {c:.0f}" for a, c, _ in cells)
            + f" | {batch_saving(rep_batch, m, 4):.2f} |"
        )
    lines.append("")
    for name, fn in REPLICATION_SUMMARY.items():
        lines.append(f"<!-- figure: {name} = {fn():.2f} -->")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replication", action="store_true", help="print the replication reading's tables")
    p.add_argument("--uncovered", action="store_true", help="list each figure no check or marker covers")
    args = p.parse_args(argv)
    if args.replication:
        print(replication_tables())
        return 0
    bad = 0
    for f, value, ok in check():
        bad += not ok
        print(
            f"{'ok' if ok else 'MISMATCH'}\t{f.record}\t{f.name}\twritten {f.written}\trecomputed {value:.6g}"
        )
    for problem in record_problems():
        bad += 1
        print(f"RECORD\t{problem}")
    for problem in inventory_problems():
        bad += 1
        print(f"INVENTORY\t{problem}")
    for record, data in INVENTORY.items():
        if data is None:
            print(f"no data kept\t{record}\tits figures are as the run printed them")
    for n in NOT_RECOMPUTABLE:
        print(f"not recomputable\t{n.record}\t{n.figures}\t{n.source}")
    for t, index, cells, problems in table_checks():
        bad += len(problems)
        print(
            f"{'ok' if not problems else 'MISMATCH'}\t{t.record}\ttable {index + 1} ({t.header} …)\t{len(cells)} cells"
        )
        for problem in problems:
            print(f"MISMATCH\t{problem}")
    for what, (checked, problems) in (("printouts", printout_checks()), ("lines", line_checks())):
        bad += len(problems)
        print(f"{'ok' if not problems else 'MISMATCH'}\t{what}\t{len(checked)} checked")
        for problem in problems:
            print(f"MISMATCH\t{problem}")
    print("coverage\trecord\tnumbers\tchecked\tmarked\tsettings\tuncovered")
    for problem in coverage_problems():
        bad += 1
        print(f"COVERAGE\t{problem}")
    for record in figure_records():
        c = coverage(record)
        print(f"coverage\t{record}\t{c.total}\t{c.checked}\t{c.marked}\t{c.settings}\t{len(c.uncovered)}")
        if args.uncovered:
            for n in c.uncovered:
                print(f"uncovered\t{record}:{n.line}\t{n.text}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
