"""Adaptive search against full grids: how much of each front every strategy finds for 10 % and 30 % of
the grid's energy. Builds the tables, runs `t2a-ray search-bench` on each, writes
`benchmarks/results/search_bench.md` with the tables, and the csv and plot of each beside it.

    python benchmarks/search_bench.py [--demo-run /tmp/h6runs/demo] [--seeds 10] [--budgets 0.1 0.3]

Strategies: `pareto` (the default of `search: {strategy: pareto}`), the random and cheapest-first
baselines, and Optuna's multi-objective TPE (`optuna-tpe`) where optuna is installed.
Beside them, per table, `oracle_bound`: the least energy with which any strategy could reach 0.99 of
each metric's hypervolume (alone, and all metrics at once), which tells a target no strategy can meet
at a budget from one a search misses.

Tables (every random draw seeded: re-running this writes the same tables):

* `paper_steps`: the energies of docs/results/h100/paper-steps (7 models × steps 10–200, 5 repeats,
  measured on an H100, random weights) with a *quality model*, since random weights score nothing:
  CLAP = ceiling[model] − 0.3 · exp(−steps / scale[model]) + N(0, 0.01) per row (seed 0) — CLAP rising
  and saturating with steps per model, the shape the study this project reproduces reports (most of
  the gain by ~25 steps), with a slower rise for some models so that the front reaches high steps.
  The parameters are `QUALITY_MODEL` below.
* `paper_fad`: the same energies with a modelled CLAP and FAD on one dataset (`FAD_MODEL`: FAD falling
  fast with the first steps, best at mid steps, slightly worse beyond, widely spread between models;
  `FAD_NOISE` relative noise per row); `paper_fad_datasets`: two datasets (a `dataset` column, searched
  per dataset with `--group dataset`; the second orders the models differently);
  `paper_fad_datasets_published`: that table as a paper publishes it — one row per configuration, the
  mean of its repeats (no CI).
* `demo`: the built-in demo run (`t2a-ray launch --out /tmp/h6runs`: 2 tiny models × 4 steps, 3 repeats
  × 2 prompts, CPU energy *estimates*) with its tiny CLAP scores (one per configuration: the score of
  a random-weight CLAP, real but meaningless), where that run exists.

Each table is written out as `search_bench_<name>.csv` beside the results. The reading of the results
(what changed, what was tried and lost, what no strategy can reach) is written by hand in
`benchmarks/results/search_bench_reading.md`, which this script includes under the header.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import itertools
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from t2a_ray.analysis.fronts import hypervolume
from t2a_ray.analysis.search_replay import Oracle

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAPER_STEPS = ROOT / "docs" / "results" / "h100" / "paper-steps" / "results.parquet"
# what the numbers mean and what was tried, by hand: included under the header of search_bench.md
READING = RESULTS / "search_bench_reading.md"
WITH_REPEATS = ("paper_steps", "paper_fad", "paper_fad_datasets")
# model: (CLAP ceiling, steps scale of the rise)
QUALITY_MODEL = {
    "audioldm": (0.40, 10),
    "audioldm2": (0.45, 20),
    "stable-audio-open": (0.50, 40),
    "tango": (0.48, 15),
    "tango2": (0.52, 25),
    "make-an-audio": (0.38, 8),
    "make-an-audio-2": (0.47, 12),
}
RISE, NOISE_SD = 0.3, 0.01
# FAD per dataset, per model: (floor, rise at low steps, steps scale of the fall, curvature of the
# U, steps of the best value). FAD = floor + rise · exp(−steps / scale) + curvature · ln(steps / best)²,
# × (1 + N(0, FAD_NOISE)) per row: falling fast with the first steps, best at mid steps, slowly worse
# beyond, and spread widely between models (a model's floor on one dataset is another's low-steps value).
FAD_MODEL = {
    "audiocaps": {
        "audioldm": (4.5, 9.0, 12, 0.35, 60),
        "audioldm2": (2.8, 7.0, 18, 0.25, 80),
        "stable-audio-open": (7.5, 12.0, 30, 0.20, 100),
        "tango": (1.9, 8.0, 15, 0.30, 60),
        "tango2": (2.3, 8.5, 20, 0.25, 70),
        "make-an-audio": (5.5, 10.0, 10, 0.40, 40),
        "make-an-audio-2": (3.6, 8.0, 12, 0.30, 50),
    },
    "clotho": {
        "audioldm": (4.0, 8.0, 12, 0.30, 60),
        "audioldm2": (2.5, 7.0, 18, 0.25, 80),
        "stable-audio-open": (3.0, 9.0, 30, 0.20, 100),
        "tango": (3.8, 7.0, 15, 0.30, 60),
        "tango2": (3.5, 7.5, 20, 0.25, 70),
        "make-an-audio": (5.0, 9.0, 10, 0.40, 40),
        "make-an-audio-2": (3.2, 8.0, 12, 0.30, 50),
    },
}
# CLAP per dataset: the ceilings of QUALITY_MODEL shifted per dataset (the same rise with steps)
CLAP_SHIFT = {"audiocaps": 0.0, "clotho": -0.05}
FAD_NOISE = 0.04


def paper_steps_table() -> pd.DataFrame:
    df = pd.read_parquet(PAPER_STEPS, columns=["model", "steps", "repeat", "energy_per_waveform_j"])
    rng = np.random.default_rng(0)
    ceiling = df["model"].map(lambda m: QUALITY_MODEL[m][0])
    scale = df["model"].map(lambda m: QUALITY_MODEL[m][1])
    df["clap_model"] = ceiling - RISE * np.exp(-df["steps"] / scale) + rng.normal(0, NOISE_SD, len(df))
    return df


def paper_fad_table(datasets: tuple[str, ...] = ("audiocaps",), seed: int = 0) -> pd.DataFrame:
    """The paper-steps energies (each dataset: the same measured rows, as the energy of a waveform does
    not depend on its caption) with a modelled CLAP (`clap_model`) and FAD (`fad_model`) per dataset."""
    energy = pd.read_parquet(PAPER_STEPS, columns=["model", "steps", "repeat", "energy_per_waveform_j"])
    rng = np.random.default_rng(seed)
    parts = []
    for dataset in datasets:
        df = energy.assign(dataset=dataset)
        steps = df["steps"].to_numpy(dtype=float)
        p = np.array([FAD_MODEL[dataset][m] for m in df["model"]], dtype=float)
        fad = p[:, 0] + p[:, 1] * np.exp(-steps / p[:, 2]) + p[:, 3] * np.log(steps / p[:, 4]) ** 2
        df["fad_model"] = fad * (1 + rng.normal(0, FAD_NOISE, len(df)))
        ceiling = df["model"].map(lambda m: QUALITY_MODEL[m][0]) + CLAP_SHIFT[dataset]
        scale = df["model"].map(lambda m: QUALITY_MODEL[m][1]).to_numpy(dtype=float)
        df["clap_model"] = ceiling - RISE * np.exp(-steps / scale) + rng.normal(0, NOISE_SD, len(df))
        parts.append(df)
    return pd.concat(parts, ignore_index=True)[
        ["dataset", "model", "steps", "repeat", "energy_per_waveform_j", "clap_model", "fad_model"]
    ]


def published(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a paper publishes it: one row per configuration, the mean of its repeats."""
    keys = [c for c in ("dataset", "model", "steps") if c in table.columns]
    return table.drop(columns="repeat").groupby(keys, as_index=False).mean()


def demo_table(run: Path) -> pd.DataFrame:
    rows = pd.read_parquet(
        run / "results.parquet", columns=["trial_id", "model", "steps", "energy_per_waveform_j"]
    )
    quality = pd.read_parquet(run / "quality.parquet", columns=["trial_id", "clap_mean"])
    return rows.merge(quality, on="trial_id").drop(columns="trial_id")


@dataclass(frozen=True)
class Case:
    name: str  # the table is written as search_bench_<name>.csv
    table: pd.DataFrame
    qualities: tuple[str, ...]  # --quality specs
    group: str = ""  # --group


def cases(demo_run: Path) -> list[Case]:
    both = ("clap_model:max", "fad_model:min")
    datasets = paper_fad_table(("audiocaps", "clotho"))
    out = [
        Case("paper_steps", paper_steps_table(), ("clap_model:max",)),
        Case("paper_fad", paper_fad_table(("audiocaps",)).drop(columns="dataset"), both),
        Case("paper_fad_datasets", datasets, both, group="dataset"),
        Case("paper_fad_datasets_published", published(datasets), both, group="dataset"),
    ]
    if (demo_run / "quality.parquet").exists():
        out.append(Case("demo", demo_table(demo_run), ("clap_mean:max",)))
    return out


@dataclass(frozen=True)
class Bound:
    """The least energy (fraction of the grid's) any strategy must spend to report fronts reaching
    `level` of the full table's hypervolume on every metric in `metrics` at once, and the configurations
    (indices into the oracle's space) that do it."""

    metrics: tuple[str, ...]
    level: float
    units: int
    energy_fraction: float
    configs: tuple[int, ...]


def oracle_bound(oracle: Oracle, metrics: Sequence[str], level: float = 0.99, units: int = 1) -> Bound:
    """The least energy with which ANY strategy could reach `level` of each metric's hypervolume.

    A search is scored on the configurations it reports, at the table's true means, and it can report
    only what it measured; so whatever it did, it measured a set S whose front (at the true means)
    reaches `level` on every metric, and spent at least S's cost. Each configuration costs `units` of
    its rows (at most the rows it has) at their true mean energy — the expected cost of measuring it,
    as rows are drawn at random. The least such cost is found exactly: only configurations that no
    other dominates on (cost, energy, every metric) can be in a cheapest S (swapping a dominated one
    for its dominator costs no more and loses no hypervolume), and a branch-and-bound over those
    decides each in turn, pruning a branch that costs more than the best found or that cannot reach
    the target even with every configuration still undecided. `units=1` gives the bound for any
    strategy at all; the bench's first measurement of two rows gives the bound for strategies
    measured as the bench measures them."""
    metrics = tuple(metrics)
    sense = dict(oracle.qualities)
    n_rows = np.array([len(e) for e in oracle.energy])
    cost = np.minimum(units, n_rows) * oracle.true_energy
    axes = [cost, oracle.true_energy]
    axes += [oracle.true_quality[m] * (-1 if sense[m] == "max" else 1) for m in metrics]
    points = np.column_stack(axes)  # every axis: less is better
    ok = np.isfinite(points).all(axis=1)
    candidates = [
        i
        for i in np.flatnonzero(ok)
        if not any(
            (points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in np.flatnonzero(ok)
        )
    ]
    # the most expensive decided first: leaving one out early prunes the most
    candidates.sort(key=lambda i: (-cost[i], i))
    targets = {m: level * oracle.full_hv[m][0] for m in metrics}

    def reaches(chosen: list[int]) -> bool:
        for m in metrics:
            ref = oracle.full_hv[m][1]
            hv, _ = hypervolume(oracle.true_energy[chosen], oracle.true_quality[m][chosen], sense[m], ref)
            if hv < targets[m] * (1 - 1e-12):
                return False
        return True

    best_cost, best = float(np.sum(cost[candidates])), list(candidates)
    if not reaches(best):  # not even every candidate (the whole front) reaches it: nothing can
        return Bound(metrics, level, units, float("inf"), ())

    def search(k: int, chosen: list[int], spent: float) -> None:
        nonlocal best_cost, best
        if spent >= best_cost:
            return
        if reaches(chosen):
            best_cost, best = spent, list(chosen)
            return
        if k == len(candidates) or not reaches(chosen + candidates[k:]):
            return
        search(k + 1, [*chosen, candidates[k]], spent + cost[candidates[k]])
        search(k + 1, chosen, spent)

    search(0, [], 0.0)
    return Bound(metrics, level, units, best_cost / oracle.grid_cost_j, tuple(sorted(int(i) for i in best)))


def run_bench(case: Case, seeds: int, budget: float, first_units: int = 2) -> tuple[str, str]:
    path = RESULTS / f"search_bench_{case.name}.csv"
    case.table.to_csv(path, index=False)
    out = RESULTS / output_name(case, budget, first_units)
    cmd = ["t2a-ray", "search-bench", "--results", str(path.relative_to(ROOT)), "--energy"]
    cmd += ["energy_per_waveform_j", "--config-cols", "model,steps"]
    for q in case.qualities:
        cmd += ["--quality", q]
    cmd += ["--group", case.group] if case.group else []
    cmd += ["--budget", str(budget), "--seeds", str(seeds), "--strategies", strategies()]
    cmd += ["--first-units", str(first_units)] if first_units != 2 else []
    cmd += ["--out", str(out.relative_to(ROOT))]
    done = subprocess.run(
        [sys.executable, "-m", "t2a_ray.cli", *cmd[1:]], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return shlex.join(cmd), done.stdout


def output_name(case: Case, budget: float, first_units: int = 2) -> str:
    """The folder of one bench run, beside the results."""
    return f"search_bench_{case.name}_{budget:g}" + ("" if first_units == 2 else f"_first{first_units}")


def strategies() -> str:
    """pareto and the baselines, and Optuna's TPE where optuna is installed."""
    tpe = ",optuna-tpe" if importlib.util.find_spec("optuna") else ""
    return f"pareto{tpe},random,cheapest"


@dataclass(frozen=True)
class GroupBound:
    """`oracle_bound` of one group and set of metrics: with one row per configuration (any strategy) and
    with `first_units` rows (the baselines' first measurement), and the configurations of the first."""

    group: str
    metrics: tuple[str, ...]
    one: Bound
    bench: Bound
    first_units: int
    where: str  # the configurations, as model@steps


def bounds(case: Case, level: float = 0.99, first_units: int = 2) -> list[GroupBound]:
    """Per group: `oracle_bound` for each metric alone and for all of them at once (one search serving
    every metric), with one row per configuration (any strategy; pareto's first measurement) and with
    the baselines' first measurement (`first_units` rows). A budget does not enter: `bound_lines` says
    what each means at one."""
    qualities = [tuple(q.split(":")) for q in case.qualities]
    metrics = [m for m, _ in qualities]
    groups = list(case.table.groupby(case.group)) if case.group else [("", case.table)]
    out = []
    for key, table in groups:
        oracle = Oracle.from_table(table, "energy_per_waveform_j", qualities, ["model", "steps"])
        sets = [[m] for m in metrics] + ([metrics] if len(metrics) > 1 else [])
        for chosen in sets:
            one = oracle_bound(oracle, chosen, level, 1)
            bench = one if first_units == 1 else oracle_bound(oracle, chosen, level, first_units)
            where = ", ".join(
                f"{oracle.space.configs.iloc[i]['model']}@{oracle.space.configs.iloc[i]['steps']}"
                for i in one.configs
            )
            out.append(GroupBound(str(key), tuple(chosen), one, bench, first_units, where))
    return out


def bound_lines(found: Sequence[GroupBound], budget: float) -> list[str]:
    """One line per bound of `bounds`: how much energy it needs, and whether `budget` allows it at all."""
    lines = []
    for b in found:
        one, bench = b.one, b.bench
        if one.energy_fraction > budget:
            word = f"infeasible at {budget:g} for every strategy"
        elif bench.energy_fraction > budget:
            word = f"infeasible at {budget:g} for a strategy that measures as the baselines do"
        else:
            word = f"not ruled out at {budget:g} (a bound, not a strategy)"
        as_bench = (
            f", {bench.energy_fraction:.3f} measuring {b.first_units} rows each as the baselines do"
            if bench.energy_fraction != one.energy_fraction
            else ""
        )
        lines.append(
            f"- oracle bound, {f'{b.group} ' if b.group else ''}{' + '.join(b.metrics)}: ≥ {one.level:g} of"
            f" the hypervolume needs at least {one.energy_fraction:.3f} of the grid's energy (one row each"
            f" of {b.where}){as_bench} — {word}"
        )
    return lines


def verdict(path: Path, budget: float, group: str) -> list[str]:
    """The criterion in words, per group and metric: pareto's median hypervolume fraction ≥ 0.99 at ≤
    `budget` of the energy, ahead of both baselines."""
    df = pd.read_csv(path)
    keys = [group] if group else []
    med = df.groupby([*keys, "metric", "strategy"]).median(numeric_only=True)["hypervolume_fraction"]
    spent = df.groupby([*keys, "strategy"])["energy_fraction"].median()
    lines = []
    for idx in med.index.droplevel(-1).unique():
        idx = idx if isinstance(idx, tuple) else (idx,)
        p, r, c = (med.loc[(*idx, s)] for s in ("pareto", "random", "cheapest"))
        # a whole front's hypervolume over the table's can come out 1 + 2e-16: equal within 1e-9 is a tie
        if p >= 0.99 and p > max(r, c) + 1e-9:
            word = "met"
        elif p >= 0.99 and p >= max(r, c) - 1e-9:
            word = "≥ 0.99, tied with a baseline (nothing left to find)"
        else:
            word = "NOT met"
        e = spent.loc[(*idx[:-1], "pareto")] if keys else spent.loc["pareto"]
        lines.append(
            f"- {' '.join(map(str, idx))}: pareto {p:.3f} at {e:.3f} of the energy, random {r:.3f},"
            f" cheapest {c:.3f} — {word} (target: ≥ 0.99 and ahead of both)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-run", type=Path, default=Path("/tmp/h6runs/demo"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.3])
    args = parser.parse_args()
    lines = [
        "# Adaptive search: hypervolume found for a fraction of the grid's energy",
        "",
        f"Produced by `python benchmarks/search_bench.py --seeds {args.seeds}` on"
        f" {dt.date.today().isoformat()} ({platform.node() or 'a'} machine, CPU, {os.cpu_count()} cores;"
        " the replay needs no GPU). Each strategy runs once per seed against the table as an oracle, per"
        " `--group` value; rows are, per metric, the median and 10th percentile over the seeds of the"
        " hypervolume of the front it reports (at the table's true means) as a fraction of the full"
        " table's, and of the energy it spent as a fraction of the full grid's. One search serves every"
        " metric of a table (as `search: pareto` does for `clap_mean` and `fad`). See"
        " `analysis/search.py` for the strategies, and the docstring of `benchmarks/search_bench.py` for"
        " how the tables were made (seeded: re-running it writes the same tables).",
        "",
        "Target: at a 0.1 budget, ≥ 0.99 of the hypervolume on CLAP and on FAD, per dataset, ahead of"
        " random and cheapest-first. The qualities are models, not measurements; the energies are the"
        " H100 paper-steps measurements.",
    ]
    sections: list[str] = []
    runs = [(case, budget, 2) for case, budget in itertools.product(cases(args.demo_run), args.budgets)]
    # pareto measures one row of a configuration first, the baselines two: the same runs with the
    # baselines measuring one row too, on the tables with repeats at the smallest budget
    runs += [(c, min(args.budgets), 1) for c in cases(args.demo_run) if c.name in WITH_REPEATS]
    for case, budget, first_units in runs:
        command, printed = run_bench(case, args.seeds, budget, first_units)
        n_configs = case.table.groupby(["model", "steps"]).ngroups
        out = output_name(case, budget, first_units)
        how = ", every strategy measuring one row first" if first_units == 1 else ""
        sections += [
            "",
            f"## {case.name}, budget {budget:g}{how}: {n_configs} configurations"
            f"{f' per {case.group}' if case.group else ''}, {len(case.table)} rows",
            "",
            f"    {command}",
            "",
            "```",
            printed.rstrip(),
            "```",
            "",
            *verdict(RESULTS / out / "search-bench.csv", budget, case.group),
            *bound_lines(bounds(case, first_units=first_units), budget),
            "",
            f"Per seed: `{out}/search-bench.csv`; curves: `{out}/search-bench.png`;"
            f" the table: `search_bench_{case.name}.csv`.",
        ]
    if READING.exists():  # the reading of the results, written by hand and kept across regenerations
        lines += ["", READING.read_text().rstrip()]
    lines += sections
    (RESULTS / "search_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
