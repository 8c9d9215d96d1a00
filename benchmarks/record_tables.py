"""Whole tables of the records, recomputed from the committed data and compared cell by cell.

A `TableCheck` names a record's table by the start of its header row and gives its body recomputed:
either a list of whole rows in the record's order, or a dict from the row's key cells (its first
`keys` cells, as written) to the other cells. A cell is compared within the rounding of what is
written (record_numbers.compare_cell); a recomputed cell of None is not checked (its figure then
needs another check or a marker). Every compared number counts as covered in recompute.py's coverage.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from record_data import RESULTS, ROOT, bench_json, record_text, rows
from record_numbers import Expected, compare_cell, tables

Body = list[list[Expected]] | dict[tuple[str, ...], list[Expected]]
# a recomputed cell of `...` is a row's label: its numbers name the row (a workload's size, a GPU's time)
LABEL = ...


@dataclass(frozen=True)
class TableCheck:
    record: str
    header: str  # the start of the table's header row, e.g. "| model | batch 1 |"
    expected: Callable[[], Body]
    keys: int = 0  # with a dict body: how many leading cells identify a row
    occurrence: int = 0  # the n-th table of the record whose header starts so

    def locate(self) -> int:
        found = [
            i
            for i, t in enumerate(tables(record_text(self.record)))
            if ("| " + " | ".join(t[0])).startswith(self.header)
        ]
        if len(found) <= self.occurrence:
            raise LookupError(f"{self.record}: no table whose header starts {self.header!r}")
        return found[self.occurrence]

    def check(self) -> tuple[int, set[tuple[int, int]], list[str]]:
        """(the table's index, the (body row, column) cells compared or labels, the problems found)."""
        index = self.locate()
        body = tables(record_text(self.record))[index][1:]
        want = self.expected()
        checked: set[tuple[int, int]] = set()
        problems: list[str] = []
        where = f"{self.record}: table {self.header!r}"
        if isinstance(want, dict):
            seen = set()
            for r, cells in enumerate(body):
                key = tuple(cells[: self.keys])
                if key not in want:
                    problems.append(f"{where}: row {' | '.join(key)} not in the data")
                    continue
                seen.add(key)
                checked |= {(r, c) for c in range(self.keys)}
                problems += self._row(where, r, cells, [*key, *want[key]], checked)
            problems += [
                f"{where}: row {' | '.join(k)} of the data not written" for k in want if k not in seen
            ]
        else:
            if len(body) != len(want):
                problems.append(f"{where}: {len(body)} rows written, {len(want)} recomputed")
            for r, (cells, row) in enumerate(zip(body, want, strict=False)):
                problems += self._row(where, r, cells, row, checked)
        return index, checked, problems

    @staticmethod
    def _row(where: str, r: int, cells: list[str], row: list[Expected], checked: set) -> list[str]:
        if len(cells) != len(row):
            return [f"{where}: row {r + 1} has {len(cells)} cells, {len(row)} recomputed"]
        out = []
        for c, (cell, e) in enumerate(zip(cells, row, strict=True)):
            if e is LABEL:
                checked.add((r, c))
                continue
            if e is None:
                continue
            problem = compare_cell(cell, e)
            if problem:
                out.append(f"{where}: row {r + 1} ({cells[0]}), column {c + 1}: {problem}")
            else:
                checked.add((r, c))
        return out


def rendered(text: str, header: str, occurrence: int = 0) -> list[list[str]]:
    """The body of a table in markdown `text` (a renderer's output), found as TableCheck finds it."""
    found = [t for t in tables(text) if ("| " + " | ".join(t[0])).startswith(header)]
    return found[occurrence][1:]


def finite(*values: float | None) -> tuple[float, ...]:
    """The numbers a cell shows: a missing or infinite one is written as a sign (–, ∞), not a number."""
    return tuple(v for v in values if v is not None and not pd.isna(v) and math.isfinite(v))


def pm(mean: float, ci: float) -> tuple[float, float]:
    return (mean, ci)


# ---- benchmarks/results/runtime_gross_net_h200.md and docs/results/h200/runtime/README.md ----

H200 = "docs/results/h200/runtime"


_RUNTIME: dict[str, pd.DataFrame] = {}


def runtime(run: str) -> pd.DataFrame:
    """The report's runtime table (analysis/runtime_tables.py) of a committed run folder."""
    from t2a_ray.analysis.runtime_tables import read_setup, runtime_tables

    if run not in _RUNTIME:
        _RUNTIME[run] = runtime_tables(rows(run), read_setup(ROOT / run))["runtime"]
    return _RUNTIME[run]


def gross_net(run: str) -> Body:
    t = runtime(run)
    cols = ["gross_change_pct", "gross_change_pct_ci95", "net_change_pct", "net_change_pct_ci95"]
    return {
        (r.model, str(r.batch_size), str(r.steps), r.compile): [getattr(r, c) for c in cols]
        for r in t.itertuples()
    }


def _pct(eager: float, other: float) -> float:
    return 100.0 * (other / eager - 1.0)


def runtime_audioldm() -> Body:
    """AudioLDM, eager against CUDA graphs: J per waveform (95 % CI), the change, the SNR."""
    t = runtime(f"{H200}/runtime-audioldm-h200")
    return {
        (str(r.batch_size), str(r.steps)): [
            pm(r.eager_energy_per_waveform_j, r.eager_energy_per_waveform_j_ci95),
            pm(r.energy_per_waveform_j, r.energy_per_waveform_j_ci95),
            r.gross_change_pct,
            r.output_snr_db,
        ]
        for r in t.itertuples()
    }


def runtime_six() -> Body:
    t = runtime(f"{H200}/runtime-h200")
    out = {}
    for r in t.itertuples():
        twin = re.fullmatch(r"steps=(\d+)", str(r.overhead_from))
        out[(r.model, str(r.batch_size), str(r.steps))] = [
            pm(r.eager_energy_per_waveform_j, r.eager_energy_per_waveform_j_ci95),
            pm(r.energy_per_waveform_j, r.energy_per_waveform_j_ci95),
            pm(r.gross_change_pct, r.gross_change_pct_ci95),
            (r.eager_gpu_busy_fraction, r.gpu_busy_fraction),
            finite(r.overhead_s, r.overhead_j / 1000, *(int(twin.group(1)),) if twin else ()),
            finite(r.break_even_waveforms, r.break_even_waveforms_low, r.break_even_waveforms_high),
            r.output_snr_db,
        ]
    return out


REP_RUNTIME = "docs/results/replication/replication-runtime"


def replication_runtime() -> Body:
    """Eager against CUDA graphs on one H100: J per waveform, gross and net change (95 % CI), busy, SNR."""
    t = runtime(REP_RUNTIME)
    return {
        (r.model, str(r.steps)): [
            pm(r.eager_energy_per_waveform_j, r.eager_energy_per_waveform_j_ci95),
            pm(r.energy_per_waveform_j, r.energy_per_waveform_j_ci95),
            pm(r.gross_change_pct, r.gross_change_pct_ci95),
            pm(r.net_change_pct, r.net_change_pct_ci95),
            (r.eager_gpu_busy_fraction, r.gpu_busy_fraction),
            r.output_snr_db,
        ]
        for r in t.itertuples()
    }


def attention() -> Body:
    """Each backend's J per waveform (95 % CI) and change against `default`; the SNR range."""
    t = runtime(f"{H200}/attention-h200")
    out: dict = {}
    for (model, batch), g in t.groupby(["model", "batch_size"]):
        first = g.iloc[0]
        cells: list[Expected] = [
            (
                first.eager_energy_per_waveform_j,
                first.eager_energy_per_waveform_j_ci95,
                first.eager_time_per_waveform_s,
            )
        ]
        for backend in ("flash", "efficient", "math"):
            r = g[g["attention"] == backend].iloc[0]
            if r.status != "ok":
                cells.append("infeasible")
                continue
            cells.append(
                (
                    r.energy_per_waveform_j,
                    r.energy_per_waveform_j_ci95,
                    r.gross_change_pct,
                    r.gross_change_pct_ci95,
                )
            )
        snr = g["output_snr_db"].dropna()
        cells.append(None if snr.empty else _range(snr.min(), snr.max(), 1))
        out[(model, str(batch))] = cells
    return out


def _range(lo: float, hi: float, decimals: int) -> str:
    a, b = f"{lo:.{decimals}f}", f"{hi:.{decimals}f}"
    return a if a == b else f"{a}–{b}"


# ---- the scaling records: their JSON ----


def scaling(name: str) -> Body:
    """scaling.py's two tables (speed-ups and the wall time's segments), recomputed from its JSON."""
    runs = bench_json(name)
    base = {r["placement"]: r for r in runs if r["gpus"] == 1}
    one = next(r for r in runs if r["gpus"] == 1)
    out = []
    for r in runs:
        b = base.get(r["placement"], one)
        out.append(
            [
                r["placement"],
                r["gpus"],
                r["wall_s"],
                b["wall_s"] / r["wall_s"],
                r["sweep_s"],
                (b["sweep_s"] / r["sweep_s"], r["gpus"]),
                r["longest_worker_span_s"],
                b["longest_worker_span_s"] / r["longest_worker_span_s"],
                (r["fixed_s"], 100 * r["fixed_s"] / r["wall_s"]),
                (r["ok"], r["trials"]),
                (r["rows_ok"], r["rows"]),
                r["max_loads_per_worker_model"],
                r["warmups"],
                r["units_taken_by_an_idle_worker"],
            ]
        )
    return out


def scaling_segments(name: str) -> Body:
    return [[r["placement"], r["gpus"], *r["breakdown_s"].values()] for r in bench_json(name)]


def scaling_old(name: str) -> Body:
    """The first scaling records (2026-11-25): one row per worker count."""
    return [
        [
            r["workers"],
            r["wall_s"],
            r["speedup"],
            r["workers"],
            tuple(r["statuses"].values()),
            r["max_loads_per_worker_model"],
            100 * r["window_fraction"],
            r["median_gap_ms"],
        ]
        for r in bench_json(name)["results"]
    ]


SCALING = ["scaling_cpu", "scaling_cpu_run1", "scaling_gpu"]
OLD_SCALING = ["scaling_noop_cpu", "scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu"]


def _tables() -> list[TableCheck]:
    out = [
        TableCheck(
            "benchmarks/results/runtime_gross_net_h200.md",
            "| model | batch_size |",
            lambda run=run: gross_net(run),
            keys=4,
            occurrence=k,
        )
        for k, run in enumerate([f"{H200}/runtime-audioldm-h200", f"{H200}/runtime-h200"])
    ]
    readme = f"{H200}/README.md"
    out += [
        TableCheck(readme, "| batch | steps | eager J", runtime_audioldm, keys=2),
        TableCheck(readme, "| model | batch | steps | eager J", runtime_six, keys=3),
        TableCheck(readme, "| model | batch | default", attention, keys=2),
        TableCheck(
            "docs/results/replication/README.md",
            "| model | steps | eager J | CUDA graphs J",
            replication_runtime,
            keys=2,
        ),
    ]
    for name in SCALING:
        record = f"benchmarks/results/{name}.md"
        out.append(TableCheck(record, "| placement | GPUs | wall s", lambda n=name: scaling(f"{n}.json")))
        if "breakdown_s" in bench_json(f"{name}.json")[0]:  # recorded before the launch's timeline: none
            out.append(
                TableCheck(
                    record, "| placement | GPUs | ray start", lambda n=name: scaling_segments(f"{n}.json")
                )
            )
    for name in OLD_SCALING:
        out.append(
            TableCheck(
                f"benchmarks/results/{name}.md", "| workers | wall s", lambda n=name: scaling_old(f"{n}.json")
            )
        )
    out += [
        TableCheck("benchmarks/results/prefetch_cpu.md", "| model | prefetch |", prefetch_runs),
        TableCheck("benchmarks/results/ray_start_cpu.md", "| run | CPU s |", ray_start_runs),
        TableCheck(
            "benchmarks/results/resume_driver_cpu.md", "| round | subprocess CPU s |", resume_driver_rounds
        ),
        TableCheck(
            "benchmarks/results/thread_share_cpu.md", "| run | threads per test process |", thread_share_runs
        ),
        TableCheck("benchmarks/results/launch_cpu.md", "| run | code | CPU s |", launch_cpu_runs),
        TableCheck("benchmarks/results/reaper_stand_down.md", "| reaper | reaper.py |", reaper_stand_down),
        TableCheck("benchmarks/results/launch_cpu.md", "| processes | how many |", launch_cpu_processes),
        TableCheck(
            "benchmarks/results/prefetch_cpu.md", "| model | first load s without", prefetch_means, keys=1
        ),
        TableCheck("benchmarks/results/cluster_scale_noop_cpu.md", "| what | figure", cluster_scale),
        TableCheck(SUITE_BY_PROCESS, "| processes | c73bf90: how many |", suite_by_process_table, keys=1),
        TableCheck(
            SUITE_BY_PROCESS, "| run | CPU s of the processes that run sweeps |", suite_budget, keys=1
        ),
    ]
    out.append(TableCheck(DOCTOR, "| GPU | # | check", doctor_table, keys=2))
    latest = (
        "| workload | windows | duration mean | duration CV | naive CV | **meter CV** | meter CV of residual"
    )
    out += [
        TableCheck(METER, latest, lambda: meter_latest("meter_precision_h100_ticks.json", True)),
        TableCheck(
            METER, latest, lambda: meter_latest("meter_precision_h100_ticks_b.json", False), occurrence=1
        ),
        TableCheck(
            METER,
            "| workload | windows | duration mean | duration CV | naive CV | meter CV | meter CV per",
            lambda: meter_first("meter_precision_h100.json"),
        ),
        TableCheck(METER, "| sampling | reads/s | GPU-afd754e1", meter_overhead_medians, keys=1),
        TableCheck(METER, "| in-window sampling | median on / off", meter_overhead_second, keys=1),
        TableCheck(METER, "| reading | wall per call", nvml_cost, keys=1),
        TableCheck(METER, "| in-window reads", replay_table),
        TableCheck(METER, "| card, time (UTC) | blocks", meter_dose_response),
        TableCheck(METER, "| card (device kind), time | command | pairs", meter_third_look),
    ]
    h100_overhead = "benchmarks/results/orchestrator_overhead_audioldm_random_h100.md"
    out += [
        TableCheck(
            "benchmarks/results/orchestrator_overhead_noop_tiny_cpu.md",
            "|  | bare loop",
            lambda: overhead("orchestrator_overhead_noop_tiny_cpu.json", False),
        ),
        TableCheck(
            h100_overhead,
            "|  | bare loop",
            lambda: overhead("orchestrator_overhead_audioldm_random_h100_a.json", True),
        ),
        TableCheck(
            h100_overhead,
            "|  | bare loop",
            lambda: overhead("orchestrator_overhead_audioldm_random_h100_b.json", True),
            occurrence=1,
        ),
    ]
    h100 = "docs/results/h100/README.md"
    out += [
        TableCheck(h100, "| model | J/step (95 % CI)", h100_steps, keys=1),
        TableCheck(h100, "| model | batch 1 | batch 2 | batch 5", h100_batch, keys=1),
        TableCheck(h100, "| model | text encoder", h100_phases, keys=1),
        TableCheck(h100, "| model | paper-steps: energy CV", h100_spread, keys=1),
    ]
    return out


# ---- docs/results/h100/README.md: the paper's sweeps on the H100 ----

H100_STEPS, H100_BATCH = "docs/results/h100/paper-steps", "docs/results/h100/paper-batch"
PHASES = ("text_encoder_energy_j", "denoise_energy_j", "decode_energy_j", "vocoder_energy_j")


def _ok(run: str) -> pd.DataFrame:
    d = rows(run)
    return d[d["status"] == "ok"]


def h100_steps() -> Body:
    from t2a_ray.analysis.fits import fit_line

    out = {}
    for model, d in _ok(H100_STEPS).groupby("model"):
        fit = fit_line(d["steps"], d["energy_per_waveform_j"])
        at100 = d[d["steps"] == 100]
        out[(model,)] = [
            pm(fit["slope"], fit["slope_ci95"]),
            fit["intercept"],
            fit["r2"],
            at100["avg_power_w"].mean(),
            at100["idle_power_w"].mean(),  # the card that ran the 100-step rows
            100 * at100["gpu_energy_net_j"].mean() / at100["gpu_energy_j"].mean(),
        ]
    return out


def h100_batch() -> Body:
    from t2a_ray.analysis.stats import mean_ci

    out = {}
    for model, d in _ok(H100_BATCH).groupby("model"):
        by = {b: g for b, g in d.groupby("batch_size")}
        cells: list[Expected] = [mean_ci(by[b]["energy_per_waveform_j"])[:2] for b in (1, 2, 5, 10)]
        cells.append(by[10]["energy_per_waveform_j"].mean() / by[1]["energy_per_waveform_j"].mean())
        cells.append((by[1]["avg_power_w"].mean(), by[10]["avg_power_w"].mean()))
        call = {b: (g["window_s"] / g["generations_in_window"]).mean() for b, g in by.items()}
        cells.append((call[1], call[10]))
        out[(model,)] = cells
    return out


def h100_phases() -> Body:
    """Each phase's share (%) of the GPU energy over all windows of a model; a phase it lacks: —."""
    out = {}
    for model, d in _ok(H100_STEPS).groupby("model"):
        total = d["gpu_energy_j"].sum()
        out[(model,)] = ["—" if d[p].isna().all() else 100 * d[p].sum() / total for p in PHASES]
    return out


def _cv(g: pd.core.groupby.SeriesGroupBy) -> pd.Series:
    return g.std() / g.mean()


def h100_spread() -> Body:
    """Median (max) CV of the energy per waveform over a configuration's repeats, and the median CV of
    its window's duration, in each sweep."""
    cells: dict = {}
    for run, key in ((H100_STEPS, "steps"), (H100_BATCH, "batch_size")):
        for model, d in _ok(run).groupby("model"):
            g = d.groupby(key)
            e, w = _cv(g["energy_per_waveform_j"]), _cv(g["window_s"])
            cells.setdefault((model,), []).extend([(100 * e.median(), 100 * e.max()), 100 * w.median()])
    return cells


# ---- the orchestrator's CPU benchmarks: prefetch, 10,000 trials ----


def prefetch_runs() -> Body:
    return [
        [
            r["model"],
            "yes" if r["prefetch"] else "no",
            r["prepare_s"],
            r["prefetch_wait_s"],
            r["prefetch_s"],
            r["first_load_s"],
        ]
        for r in bench_json("prefetch_cpu.json")["runs"]
    ]


def ray_start_runs() -> Body:
    return [[i, r["cpu_s"], r["wall_s"]] for i, r in enumerate(bench_json("ray_start_cpu.json")["runs"], 1)]


def resume_driver_rounds() -> Body:
    """Per round, a resume's driver CPU seconds as a subprocess and in-process; then their medians."""
    runs = bench_json("resume_driver_cpu.json")
    by = {how: [r["cpu_s"] for r in runs if r["how"] == how] for how in ("subprocess", "in-process")}
    rounds = [
        [i, sub, inp] for i, (sub, inp) in enumerate(zip(by["subprocess"], by["in-process"], strict=True))
    ]
    return [*rounds, ["median", statistics.median(by["subprocess"]), statistics.median(by["in-process"])]]


def thread_share_runs() -> Body:
    """Each run of `thread_share_cpu.sh`, in order: its round, the threads it gave, CPU s and wall s."""
    lines = [ln.split() for ln in (RESULTS / "thread_share_cpu.txt").read_text().splitlines()]
    runs = [ln for ln in lines if ln and not ln[0].startswith("#")]
    said = {"thread-per-core": "a thread per core", "shared": "the share"}
    return [[i // 2 + 1, said[r[0]], float(r[1]), float(r[2])] for i, r in enumerate(runs)]


def reaper_stand_down() -> Body:
    """Per label of `reaper_stand_down.py`'s printout: the reaper module it ran (its headers' blob), its
    rounds, how many of them left the child alive after `stop()`, and stop()'s slowest seconds."""
    blob, by = {}, {}
    for line in (RESULTS / "reaper_stand_down.txt").read_text().splitlines():
        if line.startswith("#"):
            module = line.split("reaper.py ")[1].split(",")[0]
            continue
        label, _, _, stop_s, alive = line.split()
        blob.setdefault(label, set()).add(module)
        by.setdefault(label, []).append((float(stop_s), alive == "yes"))
    return [
        [label, *blob[label], len(runs), sum(a for _, a in runs), max(s for s, _ in runs)]
        for label, runs in by.items()
    ]


def launch_cpu_runs() -> Body:
    """Per launch: its total, and each Tune trial process's CPU seconds (`ray::ImplicitFunc`)."""
    code = {"base": "2d1a8fa", "main": "3d02ee6"}
    rows = []
    for run in ("base-1", "main-1", "base-2", "main-2"):
        d = bench_json(f"launch_cpu/{run}.json")
        tune = [p["cpu_s"] for p in d["processes"] if p["name"].startswith("ray::ImplicitFu")]
        rows.append(
            [
                run,
                code[run.split("-")[0]],
                d["cpu_s"],
                d["wall_s"],
                len(tune),
                ", ".join(f"{t:.2f}" for t in tune),
            ]
        )
    return rows


def launch_cpu_processes() -> Body:
    """The rest of one launch's processes (`main-1.json`), in four groups, by their names."""
    procs = bench_json("launch_cpu/main-1.json")["processes"]
    groups = {"driver": [], "workers": [], "dispatcher": [], "ray": []}
    for p in procs:
        if "t2a_ray.cli launch" in p["cmd"]:
            groups["driver"].append(p["cpu_s"])
        elif p["name"] == "ray::Worker":
            groups["workers"].append(p["cpu_s"])
        elif p["name"] == "ray::Dispatcher":
            groups["dispatcher"].append(p["cpu_s"])
        elif not p["name"].startswith("ray::ImplicitFu"):
            groups["ray"].append(p["cpu_s"])
    labels = {
        "driver": "the driver (`t2a_ray.cli launch`: Ray, Tune, the report's pandas, scipy, matplotlib, the report)",
        "workers": "workers (`ray::Worker`: Ray's worker start-up, then torch)",
        "dispatcher": "the dispatcher actor",
        "ray": "Ray's daemons of a local Ray, and t2a-ray's reaper",
    }
    return [[labels[g], len(v), round(sum(v), 2)] for g, v in groups.items()]


TEST_PROCESSES = "pytest and its test processes"
DISPATCHERS = "dispatchers (`ray::Dispatcher`)"  # one per attempt of a sweep
# The groups of a test suite's processes (benchmarks/cpu_by_process.py), first match wins: a command line
# holds a pytest temporary path wherever a test ran it, so the t2a-ray commands are told apart first.
SUITE_GROUPS = [
    ("t2a-ray commands run by tests (`t2a_ray.cli`)", lambda p: "t2a_ray.cli" in p["cmd"]),
    ("reapers", lambda p: "t2a_ray.orchestrator.reaper" in p["cmd"]),
    (TEST_PROCESSES, lambda p: "pytest" in p["cmd"][:60] or "exec(eval(" in p["cmd"]),
    ("GPU workers (`ray::Worker`)", lambda p: p["cmd"].startswith("ray::Worker")),
    ("Tune trial processes (`ray::ImplicitFunc`)", lambda p: p["cmd"].startswith("ray::ImplicitFunc")),
    (DISPATCHERS, lambda p: p["cmd"].startswith("ray::Dispatcher")),
    ("Ray's log monitors", lambda p: "log_monitor.py" in p["cmd"]),
    (
        "Ray's other daemons (GCS, raylet, agents, dashboard, autoscaler monitor, idle workers)",
        lambda p: (
            any(k in p["cmd"] for k in ("gcs_server", "raylet", "dashboard", "monitor.py", "/agent"))
            or p["cmd"].startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::IDLE"))
        ),
    ),
    ("everything else (Slurm, doctors' and tests' own subprocesses)", lambda p: True),
]


SUITE_BY_PROCESS = "benchmarks/results/suite_cpu_by_process.md"


def suite_by_process_table() -> Body:
    """The two runs side by side: per group, each run's processes and CPU seconds."""
    before, after = suite_processes("c73bf90"), suite_processes("650bad9")
    return {(b[0],): [b[1], b[2], a[1], a[2]] for b, a in zip(before, after, strict=True)}


def suite_processes(run: str) -> list[list[Expected]]:
    """One suite's processes by group (`SUITE_GROUPS`): how many, their CPU seconds; then the
    groups' sum and the cgroup's total (processes shorter than a poll count in the total only)."""
    d = bench_json(f"suite_cpu_by_process/{run}.json")
    groups: dict[str, list[float]] = {label: [] for label, _ in SUITE_GROUPS}
    for p in d["processes"]:
        label = next(label for label, matches in SUITE_GROUPS if matches(p))
        groups[label].append(p["cpu_s"])
    rows = [[label, len(v), round(sum(v), 1)] for label, v in groups.items()]
    return [
        *rows,
        ["sum of the processes", sum(r[1] for r in rows), round(sum(r[2] for r in rows), 1)],
        ["the cgroup's total", None, d["cpu_s"]],
    ]


# The groups above that run sweeps: every process but the tests' own and the miscellany
SWEEP_GROUPS = [label for label, _ in SUITE_GROUPS[:-1] if label != TEST_PROCESSES]
MAKE_TEST_GOAL_S = 6 * 60
MACHINE_CORES = 2


def suite_budget() -> Body:
    """Per run (the records' two, in order): the sweeps' processes' CPU seconds, how many sweep attempts
    ran, their mean; then what two cores give in six minutes, and what is left of that beside the last
    run's test processes, with how many of its attempts that holds."""
    out = {}
    for run in ("c73bf90", "650bad9"):
        groups = {r[0]: r for r in suite_processes(run)}
        sweeps = sum(groups[g][2] for g in SWEEP_GROUPS)
        attempts = groups[DISPATCHERS][1]
        out[(run,)] = [round(sweeps, 1), attempts, round(sweeps / attempts, 1)]
    budget = MAKE_TEST_GOAL_S * MACHINE_CORES
    left = budget - groups[TEST_PROCESSES][2]  # the last run's
    per_attempt = out[(run,)][2]
    out[("six minutes of two cores",)] = [budget, None, None]
    out[("six minutes of two cores, less 650bad9's test processes",)] = [
        round(left, 1),
        math.floor(left / per_attempt),
        per_attempt,
    ]
    return out


def prefetch_means() -> Body:
    """Per model, over both rounds: the first load's mean without and with the prefetch, the saving,
    and the prepare's means."""
    d = pd.DataFrame(bench_json("prefetch_cpu.json")["runs"])
    out = {}
    for model, g in d.groupby("model", sort=False):
        off, on = g[~g["prefetch"]], g[g["prefetch"]]
        load_off, load_on = off["first_load_s"].mean(), on["first_load_s"].mean()
        out[(model,)] = [
            load_off,
            load_on,
            load_off - load_on,
            off["prepare_s"].mean(),
            on["prepare_s"].mean(),
        ]
    return out


def cluster_scale() -> Body:
    j = bench_json("cluster_scale_noop_cpu.json")
    return [
        ["trials ok", (j["statuses"]["ok"], j["trials"])],
        ["Tune trials (chunks of units)", j["tune_trials"]],
        [LABEL, j["wall_s"]],
        [LABEL, 1000 * j["driver_overhead_per_trial_s"]],
        [LABEL, 1000 * j["driver_cpu_per_trial_s"]],
        [LABEL, j["merge_from_shards_s"]],
        [LABEL, j["merge_finished_run_s"]],
        [LABEL, j["resume_finished_run_s"]],
        [LABEL, j["peak_rss_driver_bytes"] / 1e9],
        [LABEL, j["peak_rss_tree_bytes"] / 1e9],
    ]


@dataclass(frozen=True)
class LineCheck:
    """A line of prose regenerated from data: the record's line that starts with `start` must hold the
    numbers of `expected()` within their rounding."""

    record: str
    start: str
    expected: Callable[[], str]

    def check(self) -> tuple[int, list[str]]:
        """(the line's number, problems)."""
        lines = record_text(self.record).splitlines()
        found = [i for i, s in enumerate(lines, 1) if s.startswith(self.start)]
        if len(found) != 1:
            return 0, [f"{self.record}: {len(found)} lines start {self.start!r}, not 1"]
        problem = compare_cell(lines[found[0] - 1], self.expected())
        return found[0], [f"{self.record}, line {found[0]}: {problem}"] if problem else []


# ---- benchmarks/results/doctor_h200.md: every check judged again from the data the doctor kept ----

DOCTOR = "benchmarks/results/doctor_h200.md"


def _doctor_checks() -> dict[str, dict[int, dict]]:
    return {
        p["label"]: {c["number"]: c for c in p["checks"]} for p in bench_json("doctor_h200.json")["places"]
    }


def doctor_figure(check: dict, checks: dict[int, dict]) -> str:
    """A check's figure: judged again from its recorded data where the doctor's judging is a function of
    it (coverage, the meter's cost, its precision); else the figure the doctor recorded with it."""
    from t2a_ray.metering import doctor

    if check["number"] == 2:
        return doctor.judge_coverage(check["data"]).figure
    if check["number"] == 4:
        return doctor.check_meter_cost(check["data"]["read_s"], checks[5]["data"]["windows"]).figure
    if check["number"] == 5:
        return doctor.check_precision(check["data"]["windows"]).figure
    return check["figure"]


def doctor_table() -> Body:
    out = {}
    for label, checks in _doctor_checks().items():
        for n, c in checks.items():
            out[(label, str(n))] = [c["title"], c["status"].upper(), doctor_figure(c, checks), c["fix"] or ""]
    return out


def doctor_coverage_line(label: str) -> str:
    """The square wave's figures of one GPU, as the doctor's record writes them."""
    from t2a_ray.metering import doctor

    data = _doctor_checks()[label][2]["data"]
    per = data["busy_j_per_period"]
    offsets = ", ".join(f"{k}: " + "/".join(f"{x:.2f}" for x in v) for k, v in per.items())
    period_ms = 1e3 * data["period_s"] / len(per)
    return f"{label}: {period_ms:.1f} ms: {offsets}; {doctor.coverage_by_offset(data)}"


def doctor_summary() -> str:
    d = bench_json("doctor_h200.json")
    statuses = [c["status"] for p in d["places"] for c in p["checks"]]
    return f"{statuses.count('pass')} pass, {statuses.count('warn')} warn, {statuses.count('fail')} fail"


def _lines() -> list[LineCheck]:
    out = [
        LineCheck(DOCTOR, f"Coverage on {label}", lambda label=label: doctor_coverage_line(label))
        for label in _doctor_checks()
    ]
    out.append(LineCheck(DOCTOR, "- wall time:", lambda: f"{bench_json('doctor_h200.json')['wall_s']:.0f} s"))
    out.append(LineCheck(DOCTOR, "- result:", doctor_summary))
    return out


# ---- benchmarks/results/meter_precision_h100.md: per run, the summaries meter_precision.py computed
# from its windows (each run's JSON keeps both) ----

METER = "benchmarks/results/meter_precision_h100.md"


def _pct(x: float | None) -> float | str:
    return "—" if x is None else 100 * x


def meter_latest(name: str, generations_note: bool) -> Body:
    """The latest look's table: workload | windows | duration mean | duration CV | naive CV | meter CV
    (per generation for multi-generation windows) | residual CV | net CV | counter − power∫ | reads/s."""
    out = []
    for s in bench_json(name)["summaries"]:
        multi = max(s["generations"]) > 1
        duration: Expected = 100 * s["duration_cv"]
        if multi and generations_note:
            duration = (100 * s["duration_cv"], min(s["generations"]), max(s["generations"]))
        out.append(
            [
                LABEL,  # the workload's name, worded apart from the JSON's
                s["n"],
                s["duration_mean_s"],
                duration,
                _pct(s.get("naive_cv")),
                100 * (s["meter_per_generation_cv"] if multi else s["meter_cv"]),
                100 * s["meter_residual_cv"],
                _pct(s.get("meter_net_cv")),
                (100 * s["counter_vs_power_mean"], 100 * s["counter_vs_power_sd"]),
                s["counter_reads_per_window_s"],
            ]
        )
    return out


def meter_first(name: str) -> Body:
    """The first look's table (meter_precision.py's `table` of that day, without reads per s)."""
    return [
        [
            s["workload"],
            s["n"],
            s["duration_mean_s"],
            100 * s["duration_cv"],
            _pct(s.get("naive_cv")),
            100 * s["meter_cv"],
            100 * s["meter_per_generation_cv"],
            100 * s["meter_residual_cv"],
            _pct(s.get("naive_residual_cv")),
            s["meter_mean_j"],
            (100 * s["counter_vs_power_mean"], 100 * s["counter_vs_power_sd"]),
        ]
        for s in bench_json(name)["summaries"]
    ]


def _overhead(name: str) -> dict:
    return bench_json(name)["sections"]["overhead"]


SAMPLINGS = {
    "one per tick": "ticks",
    "every 50 ms": "0.05",
    "every 20 ms": "0.02",
    "every 10 ms": "0.01",
    "every 5 ms": "0.005",
}


def meter_overhead_medians() -> Body:
    """Per in-window sampling, the two interleaved runs: reads/s, the median pair slowdown (95 % CI),
    the sampler's CPU per second of window."""
    a, b = (
        _overhead("meter_overhead_h100_2026-11-26e.json"),
        _overhead("meter_overhead_h100_2026-11-26f.json"),
    )
    out = {}
    for label, key in SAMPLINGS.items():
        x, y = a[key], b[key]
        out[(label,)] = [
            (x["counter_reads_per_window_s"], y["counter_reads_per_window_s"]),
            tuple(100 * v for v in (x["pair_ratio_quartiles"][1], *x["pair_ratio_median_ci95"])),
            tuple(100 * v for v in (y["pair_ratio_quartiles"][1], *y["pair_ratio_median_ci95"])),
            (100 * x["sampler_cpu_per_window_s"], 100 * y["sampler_cpu_per_window_s"]),
        ]
    return out


def meter_overhead_second() -> Body:
    o = _overhead("meter_overhead_h100_2026-11-25b.json")
    out = {}
    for label, key in (("50 ms", "0.05"), ("20 ms", "0.02")):
        x = o[key]
        q = x["pair_ratio_quartiles"]
        out[(label,)] = [
            (x["on_median_s"], x["off_median_s"], 100 * x["overhead_median"]),
            (100 * q[1], 100 * q[0], 100 * q[2]),
            (100 * x["on_cv"], 100 * x["off_cv"]) if key == "0.05" else "—",
        ]
    return out


NVML_READS = {
    "`nvmlDeviceGetTotalEnergyConsumption`": "total_energy_consumption",
    "`nvmlDeviceGetFieldValues` (energy counter)": "fields_energy",
    "`nvmlDeviceGetFieldValues` (instantaneous power)": "fields_power_instant",
    "`nvmlDeviceGetFieldValues` (both: what the meter reads)": "fields_energy_and_power",
    "`nvmlDeviceGetPowerUsage` (1 s average)": "power_usage_1s_average",
}


def nvml_cost() -> Body:
    cost = bench_json("meter_overhead_h100_2026-11-26b.json")["sections"]["nvml_cost"]
    return {
        (label,): [cost[k]["wall_ms_median"], cost[k]["cpu_ms_median"]] for label, k in NVML_READS.items()
    }


@functools.cache
def replay_table() -> Body:
    """benchmarks/replay_in_window_reads.py run again on the committed 5 ms trace: its printed table."""
    import contextlib
    import io

    import replay_in_window_reads

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        replay_in_window_reads.main()
    return rendered(out.getvalue(), "| in-window reads")


# ---- the orchestrator's overhead against a bare loop ----


def overhead(name: str, startup: bool) -> Body:
    """orchestrator_overhead.py's table: bare loop against the launch (ratios recomputed from the times;
    `startup`: the row of wall − steady state, which the H100 record adds)."""
    j = bench_json(name)
    bare, launch = j["bare"], j["launch"]
    body = [
        ["wall time, s", bare["wall_s"], (launch["wall_s"], launch["wall_s"] / bare["wall_s"])],
        [LABEL, bare["steady_s"], (launch["steady_s"], launch["steady_s"] / bare["steady_s"])],
    ]
    if startup:
        body.append([LABEL, bare["wall_s"] - bare["steady_s"], launch["wall_s"] - launch["steady_s"]])
    body += [
        [LABEL, (bare["median_gap_ms"], bare["p90_gap_ms"]), (launch["median_gap_ms"], launch["p90_gap_ms"])],
        [LABEL, 100 * bare["window_s"] / bare["wall_s"], 100 * launch["window_s"] / launch["wall_s"]],
        ["model loads", sum(bare["loads"].values()), sum(launch["loads"].values())],
    ]
    return body


def meter_dose_response() -> Body:
    """Slowdown against counter reads per second (meter_precision.py's `dose_response`, kept in each
    interleaved run's JSON): through 0 with its CI, the line with an intercept, the predictions."""
    out = []
    for name in ("meter_overhead_h100_2026-11-26e.json", "meter_overhead_h100_2026-11-26f.json"):
        o = _overhead(name)
        d = o["dose_response"]
        pct = [100 * v for v in d["slope_through_origin_ci95"]]
        at = {
            s: (
                100 * d["predicted_through_origin"][s],
                *(100 * v for v in d["predicted_through_origin_ci95"][s]),
            )
            for s in ("ticks", "0.05")
        }
        out.append(
            [
                ...,
                o["blocks"],
                (100 * d["slope_through_origin_per_read_per_s"], *pct),
                (
                    100 * d["slope_per_read_per_s"],
                    100 * d["intercept"],
                    *(100 * v for v in d["intercept_ci95"]),
                ),
                (*at["ticks"], d["reads_per_s"]["ticks"]),
                at["0.05"],
            ]
        )
    return out


def _log_overhead(name: str) -> tuple[float, ...]:
    """The overhead line of a run whose JSON lost its overhead section (its log kept it): the pair
    median, its 95 % CI, the quartiles' ends and the sampler's CPU, in %."""
    line = next(s for s in (RESULTS / name).read_text().splitlines() if "overhead, 50 ms" in s)
    m = re.search(
        r"pair median ([-\d.]+) %, 95 % CI \['([-\d.]+) %', '([-\d.]+) %'\]; quartiles \['([-\d.]+) %', "
        r"'[-\d.]+ %', '([-\d.]+) %'\]\); sampler CPU ([\d.]+) %",
        line,
    )
    return tuple(float(x) for x in m.groups())


def meter_third_look() -> Body:
    """The third look at the overhead: one row per run (and the other-process variant), from each run's
    JSON, or its log where the JSON lost the section."""

    def row(x: dict, pairs: Expected, ci: bool = True) -> list[Expected]:
        q = [100 * v for v in x["pair_ratio_quartiles"]]
        median = (q[1], *(100 * v for v in x["pair_ratio_median_ci95"])) if ci else (q[1],)
        cpu = x.get("sampler_cpu_per_window_s")
        return [LABEL, LABEL, pairs, median, (q[0], q[2]), "—" if cpu is None else 100 * cpu]

    h200 = bench_json("meter_overhead_h200_2026-11-26.json")
    h100 = _overhead("meter_overhead_h100_2026-11-26.json")["0.05"]
    other = _overhead("meter_overhead_h100_2026-11-26c.json")
    median, lo, hi, q0, q2, cpu = _log_overhead("meter_overhead_h100_2026-11-26b.log")
    return [
        row(h200["sections"]["overhead"]["0.05"], h200["args"]["overhead_pairs"], ci=False),
        row(h100, h100["pairs"]),
        [LABEL, LABEL, None, (median, lo, hi), (q0, q2), cpu],  # its pairs are not in the log
        row(other["0.05"], other["0.05"]["pairs"]),
        row(other["0.05-other-process"], other["0.05-other-process"]["pairs"]),
    ]


TABLES = _tables()
LINES = _lines()
