"""Recompute the figures of the committed records from the committed run data, and compare.

Each figure that a record (README.md, benchmarks/results/*.md, docs/results/**/README.md) states and
whose run data is committed is in `FIGURES`: the record, a name, the value as written there, a function
that computes it from the data (Parquet run folders, benchmark JSON) and the tolerance of its rounding.
A figure whose run data was not kept is in `NOT_RECOMPUTABLE`, with the words its record must carry to
say so. `INVENTORY` lists, per figure-bearing record, the data behind it. Whole tables are recomputed
cell by cell (record_tables.py: `TableCheck`), and search_bench.md's printouts against their CSVs.

Coverage: every number of every record (record_numbers.py says which numbers are figures) is checked
(by a figure, a table or a printout check, or quoting a checked value of its record), marked (in a
section, or a record without data, that says "not recomputable"), a listed setting, or uncovered;
`UNCOVERED_ALLOWED` bounds the uncovered per record, and the test fails above it.

    python benchmarks/recompute.py                 # every figure and table: ok or MISMATCH; coverage
    python benchmarks/recompute.py --uncovered     # … and each figure not yet checked nor marked
    python benchmarks/recompute.py --replication   # the tables of docs/results/replication/README.md

Reads files only (never launches); exit 1 on any mismatch. tests/core/test_recompute.py runs it.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from t2a_ray.analysis.fits import fit_line
from t2a_ray.analysis.stats import mean_ci

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling modules, when loaded by path
import record_numbers  # noqa: E402
import record_tables  # noqa: E402
from record_data import RESULTS, ROOT, bench_json, record_text, rows  # noqa: E402
from record_tables import LINES, TABLES, TableCheck, rendered, search_bench_printouts  # noqa: E402

H100 = ROOT / "docs/results/h100"
REPLICATION = ROOT / "docs/results/replication"
ENERGY = "energy_per_waveform_j"
MODELS = ("audioldm", "audioldm2", "make-an-audio", "make-an-audio-2", "stable-audio-open", "tango", "tango2")
# the steps both the earlier H100 sweep (10–200) and the replication (10–100) ran
COMMON_STEPS = (10, 25, 50, 100)
# the replication's batch sweep ran 50 steps and batch 1, 2, 4; the earlier one 100 steps and 1, 2, 5, 10
REPLICATION_BATCHES = (1, 2, 4)


@dataclass(frozen=True)
class Figure:
    record: str  # path of the record, from the repository root
    name: str
    written: str  # the value exactly as the record writes it (it must occur in the record)
    compute: Callable[[], float]
    tolerance: float  # absolute: half a unit of the last written digit, unless said otherwise

    def check(self) -> tuple[float, bool]:
        value = float(self.compute())
        written = float(self.written.replace("−", "-"))
        return value, math.isfinite(value) and abs(value - written) <= self.tolerance


@dataclass(frozen=True)
class NotRecomputable:
    record: str
    figures: str
    source: str
    marker: str = "not recomputable"  # the words the record must carry beside the figures


@functools.cache
def steps_fit(run: str, model: str, steps: tuple[int, ...] | None = None) -> dict[str, float]:
    """The report's energy-vs-steps fit (analysis/fits.py) of one model, optionally on some steps only."""
    d = rows(run)
    d = d[(d["model"] == model) & (d["status"] == "ok")]
    if steps is not None:
        d = d[d["steps"].isin(steps)]
    return fit_line(d["steps"], d[ENERGY])


@functools.cache
def per_waveform(run: str, model: str | None = None, **settings) -> tuple[float, float, int]:
    """Mean energy per waveform (J) with its 95 % CI over the rows of one configuration."""
    d = rows(run)
    d = d[d["status"] == "ok"]
    settings = settings if model is None else {"model": model, **settings}
    for k, v in settings.items():
        d = d[d[k] == v]
    return mean_ci(d[ENERGY])


def batch_saving(run: str, model: str, big: int, small: int = 1) -> float:
    return per_waveform(run, model, batch_size=big)[0] / per_waveform(run, model, batch_size=small)[0]


def slopes(run: str, steps: tuple[int, ...] | None = None) -> pd.Series:
    return pd.Series({m: steps_fit(run, m, steps)["slope"] for m in MODELS})


def rank_correlation() -> float:
    """Spearman's ρ of the models' J/step: the replication against the earlier H100 sweep, steps 10–100."""
    new, old = (
        slopes("docs/results/replication/replication-steps"),
        slopes("docs/results/h100/paper-steps", COMMON_STEPS),
    )
    return float(spearmanr(new, old).statistic)


def host_ratio(old_gpu_prefix: str, col: str = ENERGY) -> float:
    """Mean of (replication / earlier) `col` over the (model, steps) whose earlier rows ran on the GPU
    named by `old_gpu_prefix`: how much dearer or cheaper (or slower) that card and host was."""
    new = rows("docs/results/replication/replication-steps").groupby(["model", "steps"])[col].mean()
    old_rows = rows("docs/results/h100/paper-steps")
    old_rows = old_rows[old_rows["steps"].isin(COMMON_STEPS)]
    old = old_rows.groupby(["model", "steps"])[col].mean()
    gpu = old_rows.groupby(["model", "steps"])["gpu_uuid"].first()
    ratio = (new / old)[gpu.str.startswith(old_gpu_prefix)]
    return float(ratio.mean())


def busy_vs_distance_rank() -> float:
    """Spearman's ρ between a model's median GPU-busy fraction (replication) and |log| of its J/step ratio."""
    busy = rows("docs/results/replication/replication-steps").groupby("model")["gpu_busy_fraction"].median()
    new = slopes("docs/results/replication/replication-steps")
    old = slopes("docs/results/h100/paper-steps", COMMON_STEPS)
    return float(spearmanr(busy[list(MODELS)], (new / old).abs().map(math.log).abs()).statistic)


def cv_rank(run: str) -> float:
    """Spearman's ρ between the energy CV and the window-duration CV over a run's configurations."""
    g = rows(run).groupby(["model", "steps", "batch_size"])
    return float(
        spearmanr(g[ENERGY].std() / g[ENERGY].mean(), g["window_s"].std() / g["window_s"].mean()).statistic
    )


def cv_below_window_cv_share(run: str) -> float:
    """Share of configurations whose energy CV over repeats is at most their window-duration CV."""
    g = rows(run).groupby(["model", "steps", "batch_size"])
    e = g[ENERGY].std() / g[ENERGY].mean()
    w = g["window_s"].std() / g["window_s"].mean()
    return float((e <= w).mean())


def meter_cv_percent(name: str) -> float:
    """The meter's CV (%) over the matmul windows of one meter_precision run."""
    summary = next(s for s in bench_json(name)["summaries"] if s["workload"].startswith("matmul"))
    return 100.0 * summary["meter_cv"]


def scaling_speedup(name: str, placement: str, gpus: int, phase: str = "wall_s") -> float:
    """A scaling record's speed-up over its one-GPU run, from the JSON the benchmark wrote."""
    runs = bench_json(name)
    one = next(r for r in runs if r["gpus"] == 1)
    run = next(r for r in runs if r["gpus"] == gpus and r["placement"] == placement)
    return one[phase] / run[phase]


def _half_unit(written: str) -> float:
    decimals = len(written.split(".")[1]) if "." in written else 0
    return 0.5 * 10.0**-decimals + 1e-9


def _fig(record: str, name: str, written: str, compute: Callable[[], float], tolerance: float | None = None):
    return Figure(record, name, written, compute, _half_unit(written) if tolerance is None else tolerance)


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
        out.append(_fig(h100_readme, f"{m} J/step", slope, lambda m=m: steps_fit(steps_run, m)["slope"]))
        out.append(_fig(h100_readme, f"{m} J/step CI", ci, lambda m=m: steps_fit(steps_run, m)["slope_ci95"]))
    h100_batch10 = {
        "audioldm": "0.23",
        "audioldm2": "0.18",
        "make-an-audio": "0.27",
        "make-an-audio-2": "0.53",
    }
    h100_batch10 |= {"stable-audio-open": "0.68", "tango": "0.51", "tango2": "0.48"}
    for m, ratio in h100_batch10.items():
        out.append(
            _fig(h100_readme, f"{m} batch 10 / batch 1", ratio, lambda m=m: batch_saving(batch_run, m, 10))
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
            _fig(
                record,
                "meter CV, first H100",
                "0.28",
                lambda: meter_cv_percent("meter_precision_h100_ticks.json"),
            )
        )
        out.append(
            _fig(
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
                _fig(
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
                _fig(
                    record,
                    f"{placement} speed-up, wall",
                    wall,
                    lambda p=placement: scaling_speedup("scaling_gpu.json", p, 2),
                )
            )
            out.append(
                _fig(
                    record,
                    f"{placement} speed-up, sweep phase",
                    sweep,
                    lambda p=placement: scaling_speedup("scaling_gpu.json", p, 2, "sweep_s"),
                )
            )
    out += _prose_figures()
    return [f for f in out if f.written or f.record != rep_readme] + _replication_written(
        [f for f in out if f.record == rep_readme and not f.written]
    )


def _doctor_effects_pct() -> list[float]:
    """Each doctor GPU's coverage by offset, as % off the offsets' mean (check 2's phase effect)."""
    from t2a_ray.metering import doctor

    out = []
    for place in bench_json("doctor_h200.json")["places"]:
        data = next(c for c in place["checks"] if c["number"] == 2)["data"]
        coverage = doctor.judge_coverage(data).data["coverage"]
        out += [100 * (v - 1) for v in coverage.values()]
    return out


def _audioldm_change(col: str, pick: Callable) -> float:
    """CUDA graphs against eager on AudioLDM at batch 1 (H200): the smaller or larger saving, in %."""
    t = record_tables.runtime("docs/results/h200/runtime/runtime-audioldm-h200")
    return pick(-t[t["batch_size"] == 1][col])


def _prose_figures() -> list[Figure]:
    """Figures the prose of a record states beside (or apart from) its tables."""
    nvml = bench_json("meter_overhead_h100_2026-11-26b.json")["sections"]["nvml_cost"]
    dose = [
        bench_json(n)["sections"]["overhead"]["dose_response"]["predicted_through_origin"]["ticks"]
        for n in ("meter_overhead_h100_2026-11-26e.json", "meter_overhead_h100_2026-11-26f.json")
    ]
    readme = "README.md"
    return [
        _fig(
            readme,
            "a counter read's driver time, ms",
            "2.4",
            lambda: nvml["fields_energy_and_power"]["wall_ms_median"],
        ),
        _fig(readme, "the meter's overhead at one read per tick, %", "0.19", lambda: 100 * max(dose)),
        _fig(
            readme,
            "CUDA graphs' gross saving, AudioLDM b1, least",
            "76",
            lambda: _audioldm_change("gross_change_pct", min),
        ),
        _fig(
            readme,
            "CUDA graphs' gross saving, AudioLDM b1, most",
            "81",
            lambda: _audioldm_change("gross_change_pct", max),
        ),
        _fig(
            readme,
            "CUDA graphs' net saving, AudioLDM b1, least",
            "16",
            lambda: _audioldm_change("net_change_pct", min),
        ),
        _fig(
            readme,
            "CUDA graphs' net saving, AudioLDM b1, most",
            "23",
            lambda: _audioldm_change("net_change_pct", max),
        ),
        _fig(readme, "the doctor's phase effect, lowest", "−13", lambda: min(_doctor_effects_pct())),
        _fig(readme, "the doctor's phase effect, highest", "+11", lambda: max(_doctor_effects_pct())),
        _fig(
            readme,
            "the doctor's wall time on two H200s, s",
            "63",
            lambda: bench_json("doctor_h200.json")["wall_s"],
        ),
        *_h100_prose(),
        *_h200_prose(),
        *_doctor_prose(),
        *_replication_prose(),
        *_orchestrator_prose(),
        *_meter_prose(),
    ]


def _meter_prose() -> list[Figure]:
    """The latest look's readings in meter_precision_h100.md, from its runs' JSON."""
    rec = "benchmarks/results/meter_precision_h100.md"
    ticks, ticks_b, first = (bench_json(f"meter_precision_h100{n}.json") for n in ("_ticks", "_ticks_b", ""))
    seq = {
        "first": ticks["sections"]["overhead"],
        "then": bench_json("meter_overhead_h100_2026-11-26d.json")["sections"]["overhead"],
    }
    doses = [bench_json(f"meter_overhead_h100_2026-11-26{x}.json")["sections"]["overhead"] for x in "ef"]
    nvml = bench_json("meter_overhead_h100_2026-11-26b.json")["sections"]["nvml_cost"]

    def audioldm(run: dict) -> dict:
        return run["summaries"][1]

    def pair(which: str, key: str) -> list[float]:
        x = seq[which][key]
        return [100 * x["pair_ratio_quartiles"][1], *(100 * v for v in x["pair_ratio_median_ci95"])]

    def tick_grid_max_error() -> float:
        errors = [
            cell
            for row in record_tables.replay_table()
            if row[0] == "the meter's tick grid"
            for cell in row[4:5]
        ]
        return max(float(e.rstrip("%")) for e in errors)

    slopes = [100 * d["dose_response"]["slope_through_origin_per_read_per_s"] for d in doses]
    reads = [s["counter_reads_per_window_s"] for s in ticks["summaries"]]
    out = [
        _fig(rec, "idle, first run, W", "124", lambda: ticks["idle_power_w"]),
        _fig(rec, "idle, second run, W", "119", lambda: ticks_b["idle_power_w"]),
        _fig(
            rec,
            "AudioLDM duration CV on the host of 2026-11-25, %",
            "15",
            lambda: 100 * audioldm(first)["duration_cv"],
        ),
        _fig(
            rec, "naive residual CV, first run, %", "1.44", lambda: 100 * audioldm(ticks)["naive_residual_cv"]
        ),
        _fig(
            rec,
            "naive residual CV, second run, %",
            "0.92",
            lambda: 100 * audioldm(ticks_b)["naive_residual_cv"],
        ),
        _fig(rec, "the tick grid's largest error in the replay, %", "0.04", tick_grid_max_error),
        _fig(rec, "the loop's time, shortest, s", "0.2", lambda: min(d["off_median_s"] for d in doses)),
        _fig(rec, "cost per read per s, least, %", "0.013", lambda: min(slopes)),
        _fig(rec, "cost per read per s, most, %", "0.014", lambda: max(slopes)),
        _fig(
            rec,
            "a counter read's driver time, ms",
            "2.4",
            lambda: nvml["fields_energy_and_power"]["wall_ms_median"],
        ),
        _fig(
            rec,
            "the line's cost on ≥ 1 s windows, %",
            "0.14",
            lambda: sum(slopes) / len(slopes) * sum(reads) / len(reads),
        ),
        _fig(
            rec,
            "reads per s, first sequential run",
            "12.2",
            lambda: seq["first"]["ticks"]["counter_reads_per_window_s"],
        ),
        _fig(
            rec,
            "reads per s, second sequential run",
            "12.5",
            lambda: seq["then"]["ticks"]["counter_reads_per_window_s"],
        ),
    ]
    for which, key, written in (
        ("first", "ticks", ("+0.20", "−0.13", "+0.56")),
        ("then", "ticks", ("+0.67", "+0.45", "+1.07")),
        ("first", "0.05", ("+0.36", "−0.18", "+0.85")),
        ("then", "0.05", ("+0.18", "−0.40", "+0.78")),
    ):
        for i, (w, what) in enumerate(zip(written, ("median", "CI low", "CI high"), strict=True)):
            out.append(
                _fig(
                    rec,
                    f"sequential pairs, {which}, {key}, {what}, %",
                    w,
                    lambda which=which, key=key, i=i: pair(which, key)[i],
                )
            )
    return out


def _orchestrator_prose() -> list[Figure]:
    """The readings of the orchestrator's benchmarks (scaling, overhead, 10,000 trials), from their JSON."""
    res = "benchmarks/results/"
    cluster = bench_json("cluster_scale_noop_cpu.json")
    a, b = (bench_json(f"orchestrator_overhead_audioldm_random_h100_{x}.json") for x in "ab")
    noop = bench_json("orchestrator_overhead_noop_tiny_cpu.json")
    old_gpu = bench_json("scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.json")["results"][-1]
    cpu, run1, gpu = (bench_json(f"scaling_{n}.json") for n in ("cpu", "cpu_run1", "gpu"))

    def fixed(j: dict) -> float:  # the launch's start-up and tear-down over the bare loop's, s
        return (j["launch"]["wall_s"] - j["launch"]["steady_s"]) - (
            j["bare"]["wall_s"] - j["bare"]["steady_s"]
        )

    def step(run: dict, name: str) -> list[float]:
        return [
            end - start for w in run["prepare_steps_s"].values() for k, (start, end) in w.items() if k == name
        ]

    def prepare(run: dict) -> float:
        return run["breakdown_s"]["first_prepare_s"]

    pack1, pack2, spread2 = gpu
    idle = sorted(old_gpu["idle_power_w"].values(), reverse=True)
    run1_busy = sorted(run1[-1]["busy_s"].values())
    h100 = pd.concat([rows("docs/results/h100/paper-steps")])
    at100 = h100[h100["steps"] == 100].groupby("model")["avg_power_w"].mean()
    return [
        _fig(
            res + "cluster_scale_noop_cpu.md",
            "trial latency in all, s",
            "50.5",
            lambda: cluster["trial_latency_total_s"],
        ),
        _fig(
            res + "cluster_scale_noop_cpu.md",
            "wall per trial, ms",
            "8",
            lambda: 1e3 * cluster["driver_overhead_per_trial_s"],
        ),
        _fig(
            res + "cluster_scale_noop_cpu.md",
            "driver CPU per trial, ms",
            "7",
            lambda: 1e3 * cluster["driver_cpu_per_trial_s"],
        ),
        _fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "run A's fixed cost over the bare loop, s",
            "9.3",
            lambda: fixed(a),
        ),
        _fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "run B's fixed cost over the bare loop, s",
            "7.2",
            lambda: fixed(b),
        ),
        _fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "bare time for 1.05× with run B's fixed cost, min",
            "2.4",
            lambda: fixed(b) / 0.05 / 60,
        ),
        _fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "run B's bare loop over its launch, steady state, %",
            "9",
            lambda: 100 * (b["bare"]["steady_s"] / b["launch"]["steady_s"] - 1),
        ),
        _fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "H100 power at batch 1, least (docs/results/h100, 100 steps), W",
            "140",
            lambda: at100.min(),
            5,
        ),
        _fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "H100 power at batch 1, most, W",
            "310",
            lambda: at100.max(),
            5,
        ),
        _fig(
            res + "orchestrator_overhead_noop_tiny_cpu.md",
            "the launch over the bare loop, %",
            "4.7",
            lambda: 100 * (noop["wall_ratio"] - 1),
        ),
        _fig(
            res + "orchestrator_overhead_noop_tiny_cpu.md",
            "first to last trial, %",
            "0.3",
            lambda: 100 * (noop["steady_ratio"] - 1),
        ),
        _fig(
            res + "scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.md",
            "idle power, first card, W",
            "122.6",
            lambda: bench_json("scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.json")["results"][
                0
            ]["idle_power_w"]["GPU-94f0b513-f721-408e-7782-e256b433992c"],
        ),
        _fig(
            res + "scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.md",
            "idle power, second card, W",
            "119.0",
            lambda: idle[-1],
        ),
        _fig(
            res + "scaling_cpu.md",
            "the configurations' latency in all, s",
            "84.2",
            lambda: cpu[0]["predicted_sweep_s"],
        ),
        _fig(
            res + "scaling_cpu.md",
            "4 workers, share of the ideal",
            "0.91",
            lambda: cpu[0]["sweep_s"] / cpu[2]["sweep_s"] / 4,
        ),
        _fig(
            res + "scaling_cpu.md",
            "8 workers, share of the ideal",
            "0.97",
            lambda: cpu[0]["sweep_s"] / cpu[3]["sweep_s"] / 8,
        ),
        _fig(
            res + "scaling_cpu.md",
            "the ideal sweep phase on 4 workers, s",
            "21.1",
            lambda: cpu[0]["sweep_s"] / 4,
        ),
        _fig(
            res + "scaling_cpu_run1.md",
            "the other workers' busy time at 8 (median), s",
            "10.5",
            lambda: float(pd.Series(run1_busy[:-1]).median()),
        ),
        _fig(res + "scaling_gpu.md", "the one-GPU sweep, min", "7.6", lambda: pack1["wall_s"] / 60),
        _fig(
            res + "scaling_gpu.md",
            "pack: the GPUs' end apart, s",
            "2.6",
            lambda: max(pack2["busy_s"].values()) - min(pack2["busy_s"].values()),
        ),
        _fig(
            res + "scaling_gpu.md", "pack: busy, first GPU, s", "215.6", lambda: min(pack2["busy_s"].values())
        ),
        _fig(
            res + "scaling_gpu.md",
            "spread: the GPUs' end apart, s",
            "3.1",
            lambda: max(spread2["busy_s"].values()) - min(spread2["busy_s"].values()),
        ),
        _fig(
            res + "scaling_gpu.md",
            "spread: busy, first GPU, s",
            "220.9",
            lambda: min(spread2["busy_s"].values()),
        ),
        _fig(
            res + "scaling_gpu.md",
            "the reference workload, least, s",
            "2.5",
            lambda: min(x for r in gpu for x in step(r, "reference")),
        ),
        _fig(
            res + "scaling_gpu.md",
            "the reference workload, most, s",
            "2.6",
            lambda: max(x for r in gpu for x in step(r, "reference")),
        ),
        _fig(
            res + "scaling_gpu.md",
            "from a worker prepared to its first unit, s",
            "0.01",
            lambda: pack1["breakdown_s"]["to_first_unit_s"],
        ),
        _fig(
            res + "scaling_gpu.md",
            "the prefetch, least, s",
            "8.4",
            lambda: min(x for r in gpu for x in step(r, "prefetch")),
        ),
        _fig(
            res + "scaling_gpu.md",
            "the prefetch, most, s",
            "10.9",
            lambda: max(x for r in gpu for x in step(r, "prefetch")),
        ),
        _fig(
            res + "scaling_gpu.md",
            "the wait for it, least, s",
            "3.2",
            lambda: min(x for r in gpu for x in step(r, "prefetch_wait")),
        ),
        _fig(
            res + "scaling_gpu.md",
            "the wait for it, most, s",
            "5.6",
            lambda: max(x for r in gpu for x in step(r, "prefetch_wait")),
        ),
        _fig(
            res + "scaling_gpu.md",
            "spread with the one-GPU run's preparation as short as its own",
            "1.85",
            lambda: (pack1["wall_s"] - (prepare(pack1) - prepare(spread2))) / spread2["wall_s"],
        ),
        _fig(
            res + "scaling_gpu.md",
            "time in windows, least, %",
            "82",
            lambda: 100 * min(r["window_fraction_of_wall"] for r in gpu),
        ),
        _fig(
            res + "scaling_gpu.md",
            "time in windows, most, %",
            "88",
            lambda: 100 * max(r["window_fraction_of_wall"] for r in gpu),
        ),
        *(
            _fig(
                res + "scaling_gpu.md",
                f"GPU effect {g['gpu_uuid'][:12]} {col}",
                written,
                lambda g=g, col=col: g[col],
            )
            for g, pairs in zip(
                spread2["gpu_effect"], (("1.0033", "0.0277"), ("0.9954", "0.0178")), strict=True
            )
            for col, written in zip(("energy_ratio", "energy_ratio_ci95"), pairs, strict=True)
        ),
    ]


def _replication_prose() -> list[Figure]:
    from scipy.stats import t as student_t

    rec = "docs/results/replication/README.md"
    old_steps, old_batch = "docs/results/h100/paper-steps", "docs/results/h100/paper-batch"

    def energy(run: str, model: str) -> pd.Series:
        d = rows(run)
        return d[(d["model"] == model) & (d["status"] == "ok")].groupby("steps")[ENERGY].mean()

    def per_steps(run: str, num: str, den: str) -> pd.Series:
        ratio = energy(run, num) / energy(run, den)
        return ratio[ratio.index.isin(COMMON_STEPS)]

    def sao_ratio() -> pd.Series:
        return (energy(REP_STEPS, "stable-audio-open") / energy(old_steps, "stable-audio-open")).dropna()

    def busy(run: str, **where) -> pd.Series:
        d = rows(run)
        for k, v in where.items():
            d = d[d[k] == v]
        return 100 * d.groupby("model")["gpu_busy_fraction"].median()

    def idle_of(prefix: str) -> float:
        d = pd.concat([rows(old_steps), rows(old_batch)])
        return d[d["gpu_uuid"].str.startswith(prefix)]["idle_power_w"].max()

    def bound(model: str, sign: int) -> float:
        f = steps_fit(REP_STEPS, model)
        return f["slope"] + sign * f["slope_ci95"]

    ratios = lambda: slopes(REP_STEPS) / slopes(old_steps, COMMON_STEPS)  # noqa: E731
    return [
        _fig(rec, "this card's idle power, W", "114.9", lambda: rows(REP_STEPS)["idle_power_w"].mean()),
        _fig(rec, "idle power of GPU-2d873470, W", "122.3", lambda: idle_of("GPU-2d873470")),
        _fig(rec, "idle power of GPU-7201daf1, W", "117.5", lambda: idle_of("GPU-7201daf1")),
        _fig(rec, "t-quantile with 3 repeats", "4.3", lambda: student_t.ppf(0.975, 2)),
        _fig(rec, "t-quantile with 2 repeats", "12.7", lambda: student_t.ppf(0.975, 1)),
        _fig(
            rec,
            "busy %, audioldm(2), batch 1, least",
            "13",
            lambda: busy(REP_BATCH, batch_size=1)[["audioldm", "audioldm2"]].min(),
        ),
        _fig(
            rec,
            "busy %, audioldm(2), batch 1, most",
            "18",
            lambda: busy(REP_BATCH, batch_size=1)[["audioldm", "audioldm2"]].max(),
        ),
        _fig(rec, "stable-audio-open per-steps ratio, least", "0.90", lambda: sao_ratio().min()),
        _fig(rec, "stable-audio-open per-steps ratio, most", "1.02", lambda: sao_ratio().max()),
        _fig(
            rec, "earlier tango J/step, steps 10–200", "10.30", lambda: steps_fit(old_steps, "tango")["slope"]
        ),
        _fig(
            rec,
            "earlier tango2 J/step, steps 10–200",
            "8.57",
            lambda: steps_fit(old_steps, "tango2")["slope"],
        ),
        _fig(
            rec,
            "earlier tango2 / tango, 10 steps",
            "0.91",
            lambda: per_steps(old_steps, "tango2", "tango")[10],
        ),
        _fig(
            rec,
            "earlier tango2 / tango, 25 steps",
            "1.13",
            lambda: per_steps(old_steps, "tango2", "tango")[25],
        ),
        _fig(
            rec,
            "earlier tango2 / tango, 50 steps",
            "0.77",
            lambda: per_steps(old_steps, "tango2", "tango")[50],
        ),
        _fig(
            rec,
            "earlier tango2 / tango, 100 steps",
            "0.85",
            lambda: per_steps(old_steps, "tango2", "tango")[100],
        ),
        _fig(rec, "tango J/step, lower end", "7.92", lambda: bound("tango", -1)),
        _fig(rec, "tango J/step, upper end", "9.12", lambda: bound("tango", 1)),
        _fig(rec, "tango2 J/step, lower end", "8.02", lambda: bound("tango2", -1)),
        _fig(rec, "tango2 J/step, upper end", "10.21", lambda: bound("tango2", 1)),
        _fig(
            rec,
            "tango2 / tango per steps, least",
            "0.96",
            lambda: per_steps(REP_STEPS, "tango2", "tango").min(),
        ),
        _fig(
            rec,
            "tango2 / tango per steps, most",
            "1.08",
            lambda: per_steps(REP_STEPS, "tango2", "tango").max(),
        ),
        _fig(rec, "busy %, least model median", "13", lambda: busy(REP_STEPS).min()),
        _fig(rec, "busy %, most model median", "36", lambda: busy(REP_STEPS).max()),
        _fig(rec, "share energy CV ≤ window CV, %", "93", lambda: 100 * cv_below_window_cv_share(REP_STEPS)),
        _fig(
            rec,
            "largest J/step difference between the sweeps, %",
            "25",
            lambda: 100 * (ratios() - 1).abs().max(),
        ),
    ]


def _doctor_prose() -> list[Figure]:
    from t2a_ray.metering import doctor

    rec = "benchmarks/results/doctor_h200.md"
    places = {
        p["label"]: {c["number"]: c for c in p["checks"]} for p in bench_json("doctor_h200.json")["places"]
    }
    g0, g1 = (places[k] for k in sorted(places))
    judged = {k: doctor.judge_coverage(p[2]["data"]).data for k, p in places.items()}
    j0, j1 = (judged[k] for k in sorted(judged))

    def effect(j: dict, offset: str) -> float:
        return 100 * (j["coverage"][offset] - 1)

    def ci_half_pct() -> float:
        halves = [(hi - lo) / 2 for j in judged.values() for lo, hi in j["coverage_ci"].values()]
        return 100 * sum(halves) / len(halves)

    def window_s() -> float:
        windows = [w["duration_s"] for p in places.values() for w in p[5]["data"]["windows"]]
        return sum(windows) / len(windows)

    return [
        _fig(
            rec,
            "one read, ms (both GPUs)",
            "2.5",
            lambda: 1e3 * (g0[4]["data"]["read_s"] + g1[4]["data"]["read_s"]) / 2,
        ),
        _fig(rec, "fixed-work windows, s", "0.9", window_s),
        _fig(rec, "coverage, least (GPU 0)", "0.87", lambda: min(j0["coverage"].values())),
        _fig(rec, "coverage CI half-width, %", "2.5", ci_half_pct),
        _fig(rec, "offset 7 below the mean, GPU 0, %", "12.7", lambda: -effect(j0, "7")),
        _fig(rec, "offset 7 below the mean, GPU 1, %", "10.8", lambda: -effect(j1, "7")),
        _fig(rec, "offset 1 above the mean, GPU 0, %", "10.8", lambda: effect(j0, "1")),
        _fig(rec, "offset 1 above the mean, GPU 1, %", "11.2", lambda: effect(j1, "1")),
        _fig(rec, "ANOVA p, GPU 1", "3.6e-8", lambda: j1["anova_p"], tolerance=0.05e-8),
        _fig(
            rec,
            "the largest effect, %",
            "13",
            lambda: max(abs(effect(j, k)) for j in judged.values() for k in j["coverage"]),
        ),
    ]


def _h200_prose() -> list[Figure]:
    from t2a_ray.analysis.gpu_effect import gpu_effect
    from t2a_ray.analysis.runtime import read_setup, runtime_tables

    rec = "docs/results/h200/runtime/README.md"
    one, six = "docs/results/h200/runtime/runtime-audioldm-h200", "docs/results/h200/runtime/runtime-h200"
    t = record_tables.runtime(one)

    def cfg(batch: int, steps: int, col: str) -> float:
        return float(t[(t["batch_size"] == batch) & (t["steps"] == steps)][col].iloc[0])

    def j_per_step(compile_: str) -> float:
        d = rows(one)
        d = d[(d["batch_size"] == 1) & (d["compile"] == compile_) & (d["status"] == "ok")]
        return fit_line(d["steps"], d[ENERGY])["slope"]

    @functools.cache
    def boundness() -> pd.DataFrame:
        return runtime_tables(rows(one), read_setup(ROOT / one))["launch_boundness"]

    def power_over_idle(steps: int) -> float:
        lb = boundness()
        return float(
            lb[(lb["batch_size"] == 1) & (lb["compile"] == "none") & (lb["steps"] == steps)][
                "power_over_idle"
            ].iloc[0]
        )

    @functools.cache
    def effects() -> pd.DataFrame:
        d = rows(six)
        return gpu_effect(d[d["status"] == "ok"], ENERGY)

    def effect(col: str, pick: Callable) -> float:
        return pick(effects()[col])

    def cv_medians(compile_: str) -> pd.Series:
        d = rows(six)
        g = d.groupby(["model", "compile", "batch_size", "steps"])[ENERGY]
        cv = (g.std() / g.mean()).groupby(["model", "compile"]).median()
        return 100 * cv.xs(compile_, level="compile")

    def throttled_power(pick: Callable) -> float:
        d = rows(six)
        return pick(d[d["throttled"].fillna(False).astype(bool)]["avg_power_w"])

    busy = {(b, s): 100 * cfg(b, s, "gpu_busy_fraction") for b in (1, 4) for s in (25, 100)}
    return [
        _fig(rec, "eager J/step, batch 1", "6.71", lambda: j_per_step("none")),
        _fig(rec, "CUDA graphs J/step, batch 1", "1.19", lambda: j_per_step("reduce-overhead")),
        _fig(
            rec,
            "batch 4 against batch 1, eager, 100 steps, %",
            "−70",
            lambda: (
                100
                * (
                    cfg(4, 100, "eager_energy_per_waveform_j") / cfg(1, 100, "eager_energy_per_waveform_j")
                    - 1
                )
            ),
        ),
        _fig(
            rec,
            "eager busy %, batch 1, 25 steps",
            "12.5",
            lambda: 100 * cfg(1, 25, "eager_gpu_busy_fraction"),
        ),
        _fig(
            rec,
            "eager busy %, batch 1, 100 steps",
            "12.6",
            lambda: 100 * cfg(1, 100, "eager_gpu_busy_fraction"),
        ),
        _fig(rec, "eager power over idle, batch 1, 100 steps", "1.14", lambda: power_over_idle(100)),
        _fig(rec, "eager power over idle, batch 1, 25 steps", "1.16", lambda: power_over_idle(25)),
        _fig(rec, "graphs busy %, batch 1, least", "50", lambda: min(busy[(1, 25)], busy[(1, 100)])),
        _fig(rec, "graphs busy %, batch 1, most", "58", lambda: max(busy[(1, 25)], busy[(1, 100)])),
        _fig(rec, "graphs busy %, batch 4, most", "64", lambda: max(busy[(4, 25)], busy[(4, 100)])),
        _fig(rec, "compile s, batch 1", "72", lambda: cfg(1, 25, "overhead_s")),
        _fig(rec, "compile kJ, batch 1", "9.1", lambda: cfg(1, 25, "overhead_j") / 1000),
        _fig(rec, "compile s, batch 4", "57", lambda: cfg(4, 25, "overhead_s")),
        _fig(rec, "compile kJ, batch 4", "7.4", lambda: cfg(4, 25, "overhead_j") / 1000),
        _fig(rec, "relative L2 error %, least", "0.26", lambda: 100 * t["output_rel_l2_error"].min()),
        _fig(rec, "relative L2 error %, most", "0.37", lambda: 100 * t["output_rel_l2_error"].max()),
        _fig(
            rec,
            "audioldm eager J/step on the H100s",
            "6.32",
            lambda: steps_fit("docs/results/h100/paper-steps", "audioldm")["slope"],
        ),
        _fig(rec, "GPU effect, least", "0.984", lambda: effect("energy_ratio", min)),
        _fig(rec, "GPU effect, most", "1.021", lambda: effect("energy_ratio", max)),
        _fig(rec, "GPU effect CI, least", "0.015", lambda: effect("energy_ratio_ci95", min)),
        _fig(rec, "GPU effect CI, most", "0.022", lambda: effect("energy_ratio_ci95", max)),
        _fig(
            rec,
            "audioldm eager busy fraction, batch 1",
            "0.13",
            lambda: cfg(1, 25, "eager_gpu_busy_fraction"),
        ),
        _fig(
            rec,
            "energy CV under graphs, least model median, %",
            "0.7",
            lambda: cv_medians("reduce-overhead").min(),
        ),
        _fig(
            rec,
            "energy CV under graphs, largest model median, %",
            "3.5",
            lambda: cv_medians("reduce-overhead").max(),
        ),
        _fig(rec, "energy CV eager, least model median, %", "2.2", lambda: cv_medians("none").min()),
        _fig(rec, "energy CV eager, largest model median, %", "15", lambda: cv_medians("none").max()),
        _fig(rec, "throttled windows' power, least, W", "288", lambda: throttled_power(min)),
        _fig(rec, "throttled windows' power, most, W", "685", lambda: throttled_power(max)),
    ]


def _h100_prose() -> list[Figure]:
    from scipy.stats import t as student_t

    h100 = "docs/results/h100/README.md"
    steps_run, batch_run = "docs/results/h100/paper-steps", "docs/results/h100/paper-batch"
    rep_steps = "docs/results/replication/replication-steps"
    phases = record_tables.h100_phases()
    fits = {m: steps_fit(steps_run, m) for m in MODELS}

    def share(model: str, col: int) -> float:
        return phases[(model,)][col]

    def idle_by_gpu() -> list[float]:
        both = pd.concat([rows(steps_run), rows(batch_run)])
        return sorted(both.groupby("gpu_uuid")["idle_power_w"].max())

    def at100(model: str, col: str) -> float:
        d = rows(steps_run)
        return d[(d["model"] == model) & (d["steps"] == 100)][col].mean()

    def call_s(model: str, batch: int) -> float:
        d = rows(batch_run)
        d = d[(d["model"] == model) & (d["batch_size"] == batch)]
        return (d["window_s"] / d["generations_in_window"]).mean()

    def window_cv_medians() -> pd.Series:
        g = rows(steps_run).groupby(["model", "steps"])["window_s"]
        return 100 * (g.std() / g.mean()).groupby("model").median()

    def s_per_step(model: str, steps: int) -> float:
        d = rows(steps_run)
        return d[(d["model"] == model) & (d["steps"] == steps)]["latency_s"].mean() / steps

    not_maa2 = [m for m in MODELS if m != "make-an-audio-2"]
    out = [
        _fig(h100, "t-quantile with 2 repeats", "12.7", lambda: student_t.ppf(0.975, 1)),
        _fig(h100, "idle power, lowest H100", "117.5", lambda: idle_by_gpu()[0]),
        _fig(h100, "idle power, highest of the four H100s", "122.3", lambda: idle_by_gpu()[-2]),
        _fig(h100, "idle power, the H100 of the make-an-audio-2 rerun", "138.2", lambda: idle_by_gpu()[-1]),
        _fig(
            h100,
            "denoising share, least (not make-an-audio-2)",
            "92",
            lambda: min(share(m, 1) for m in not_maa2),
        ),
        _fig(h100, "denoising share, most", "98", lambda: max(share(m, 1) for m in not_maa2)),
        _fig(h100, "make-an-audio-2 text encoder share", "12", lambda: share("make-an-audio-2", 0)),
        _fig(h100, "make-an-audio-2 vocoder share", "12", lambda: share("make-an-audio-2", 3)),
        _fig(h100, "R², least", "0.93", lambda: min(f["r2"] for f in fits.values())),
        _fig(h100, "R², most", "0.99", lambda: max(f["r2"] for f in fits.values())),
        _fig(
            h100,
            "tango J/step on one card (replication)",
            "8.52",
            lambda: steps_fit(rep_steps, "tango")["slope"],
        ),
        _fig(h100, "its CI", "0.60", lambda: steps_fit(rep_steps, "tango")["slope_ci95"]),
        _fig(
            h100,
            "tango2 J/step on one card (replication)",
            "9.11",
            lambda: steps_fit(rep_steps, "tango2")["slope"],
        ),
        _fig(h100, "its CI", "1.10", lambda: steps_fit(rep_steps, "tango2")["slope_ci95"]),
        _fig(
            h100,
            "audioldm idle share of energy at 100 steps",
            "85",
            lambda: 100 * at100("audioldm", "idle_power_w") / at100("audioldm", "avg_power_w"),
        ),
        _fig(
            h100,
            "audioldm2 idle share of energy at 100 steps",
            "89",
            lambda: 100 * at100("audioldm2", "idle_power_w") / at100("audioldm2", "avg_power_w"),
        ),
        _fig(
            h100,
            "stable-audio-open latency growth, batch 1 → 10",
            "2.9",
            lambda: call_s("stable-audio-open", 10) / call_s("stable-audio-open", 1),
        ),
        _fig(
            h100,
            "make-an-audio-2 at batch 10, J",
            "93",
            lambda: per_waveform(batch_run, "make-an-audio-2", batch_size=10)[0],
        ),
        _fig(
            h100,
            "stable-audio-open / audioldm at batch 10",
            "8",
            lambda: (
                per_waveform(batch_run, "stable-audio-open", batch_size=10)[0]
                / per_waveform(batch_run, "audioldm", batch_size=10)[0]
            ),
        ),
        _fig(h100, "window CV, least model median", "5", lambda: window_cv_medians().min()),
        _fig(h100, "window CV, largest model median", "13", lambda: window_cv_medians().max()),
        _fig(h100, "audioldm2 s/step at 200 steps", "0.083", lambda: s_per_step("audioldm2", 200)),
        _fig(h100, "audioldm2 s/step at 150 steps", "0.107", lambda: s_per_step("audioldm2", 150)),
    ]
    out += [
        _fig(h100, f"{m} J/step, one decimal", f"{written}", lambda m=m: fits[m]["slope"])
        for m, written in (
            ("stable-audio-open", "15.4"),
            ("audioldm2", "12.2"),
            ("tango", "10.3"),
            ("tango2", "8.6"),
            ("audioldm", "6.3"),
            ("make-an-audio", "3.9"),
            ("make-an-audio-2", "1.7"),
        )
    ]
    return out


REP_STEPS = "docs/results/replication/replication-steps"
REP_BATCH = "docs/results/replication/replication-batch"
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
        out.append(Figure(f.record, f.name, written, f.compute, _half_unit(written)))
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
    "benchmarks/results/search_bench.md": ("benchmarks/results/search_bench_*.csv",),
    "benchmarks/results/runtime_gross_net_h200.md": ("docs/results/h200/runtime/*/results.parquet",),
    "benchmarks/results/adapters_fullsize_h100.md": None,
    "benchmarks/results/ctrl_c_cpu.md": None,
    "benchmarks/results/driver_kill_leftovers.md": None,
    "benchmarks/results/fault_injection.md": None,
    "benchmarks/results/gpu_tests_h100.md": None,
    "benchmarks/results/gpu_host_suite.md": None,
    "benchmarks/results/suite_time_cpu.md": None,
    "benchmarks/results/hostile_inputs.md": None,
    "benchmarks/results/tiny_audio_levels.md": None,
}


def figure_records() -> list[str]:
    """Every record that states figures: README.md, benchmarks/results/*.md, docs/results/**/README.md."""
    found = ["README.md", *(p for p in RESULTS.glob("*.md")), *(ROOT / "docs/results").rglob("README.md")]
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
    checked, problems = search_bench_printouts()
    return frozenset(checked), tuple(problems)


@functools.cache
def line_checks() -> tuple[frozenset[tuple[str, int]], tuple[str, ...]]:
    """The prose lines regenerated from data (record_tables.LINES): ((record, line) that agree, problems)."""
    agree, problems = set(), []
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
        "80": "an example: a tick's energy at 800 W, J",
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
    },
}
# records whose fenced blocks are a program's printed tables (figures), not code
PRINTOUTS = {"benchmarks/results/search_bench.md"}


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


# Figures not yet checked, per record: the test fails when a record has more (a new figure must come
# with its check or its marker). Lower them as checks are added; `--uncovered` lists them.
UNCOVERED_ALLOWED: dict[str, int] = {
    "benchmarks/results/meter_precision_h100.md": 47,
    "benchmarks/results/search_bench.md": 107,
}


def coverage_problems() -> list[str]:
    """A record with more unchecked, unmarked figures than allowed; a record without data not marked."""
    problems = []
    for record in figure_records():
        c = coverage(record)
        if len(c.uncovered) > UNCOVERED_ALLOWED.get(record, 0):
            first = c.uncovered[0]
            problems.append(
                f"{record}: {len(c.uncovered)} figures neither checked nor marked (allowed "
                f"{UNCOVERED_ALLOWED.get(record, 0)}), the first {first.text} on line {first.line}"
            )
        if INVENTORY.get(record, ()) is None and not record_numbers.sections(record_text(record))[0].marked:
            problems.append(
                f"{record}: no data kept, and its top does not say its figures are not recomputable"
            )
    return problems


def coverage(record: str) -> Coverage:
    """Every figure-bearing number of a record: checked, marked, a listed setting, or uncovered. A prose
    number counts as checked where the same digits are checked elsewhere in the record (a reading that
    quotes its table)."""
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
        if (n.table is None and n.col is None and n.num in verified) or n.num in figures:
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
    print("coverage\trecord\tnumbers\tchecked\tmarked\tsettings\tuncovered (allowed)")
    for problem in coverage_problems():
        bad += 1
        print(f"COVERAGE\t{problem}")
    for record in figure_records():
        c = coverage(record)
        allowed = UNCOVERED_ALLOWED.get(record, 0)
        print(
            f"coverage\t{record}\t{c.total}\t{c.checked}\t{c.marked}\t{c.settings}\t{len(c.uncovered)} ({allowed})"
        )
        if args.uncovered:
            for n in c.uncovered:
                print(f"uncovered\t{record}:{n.line}\t{n.text}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
