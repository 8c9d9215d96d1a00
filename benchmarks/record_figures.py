"""What the figure checks share: the `Figure` value, the fits and means they recompute, the run folders."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import record_numbers
from record_data import bench_json, rows
from scipy.stats import spearmanr

from t2a_ray.analysis.fits import fit_line
from t2a_ray.analysis.stats import mean_ci

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


class Below(Figure):
    """A figure the record writes as a bound ("less than 0.001"): the value must be below it."""

    def check(self) -> tuple[float, bool]:
        value = float(self.compute())
        return value, math.isfinite(value) and value < float(self.written)


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


def rounding(written: str) -> float:
    """The tolerance of a written figure: half a unit of its last digit, with a float's slack."""
    return record_numbers.half_unit(written.lstrip("−-+")) + 1e-9


def fig(record: str, name: str, written: str, compute: Callable[[], float], tolerance: float | None = None):
    return Figure(record, name, written, compute, rounding(written) if tolerance is None else tolerance)


REP_STEPS = "docs/results/replication/replication-steps"
REP_BATCH = "docs/results/replication/replication-batch"
