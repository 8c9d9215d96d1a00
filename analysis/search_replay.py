"""Replay a search against a finished table, as `t2a-ray search-bench` does.

The table is an oracle: a configuration (its `config_cols` values) has its rows as repeats; measuring
one unit of it draws one of its rows at random, without replacement (a configuration with one row
answers the same each time, and only once). A baseline's first measurement draws two rows where there
are two, so that its mean has a CI; `pareto` draws one (a row alone takes the others' noise as its CI:
`pooled_ci` in `analysis/search.py`). Measuring costs the rows' energy, so the whole grid costs the sum
of the energy column.

A search is scored by its *reported* front — per metric, the configurations its own measurements put
on the front beyond their 95 % CIs — evaluated at the full table's means: the hypervolume of those
points against the full table's reference point, as a fraction of the full table's hypervolume
(per metric). Energy is what the search spent, as a fraction of the full grid's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from t2a_ray.analysis.fronts import hypervolume
from t2a_ray.analysis.pipeline import configuration_keys
from t2a_ray.analysis.search import STRATEGIES, Budget, Measurement, SearchSpace, Strategy
from t2a_ray.schema import REPEAT_COLUMNS

BENCH_COLUMNS = (
    "strategy",
    "seed",
    "metric",
    "energy_fraction",
    "hypervolume_fraction",
    "grid_energy_predicted_fraction",
    "energy_to_hv95",
)
HV95 = 0.95  # the share of a metric's hypervolume whose first reaching `energy_to_hv95` records


@dataclass
class Oracle:
    space: SearchSpace
    qualities: list[tuple[str, str]]
    energy: list[np.ndarray]  # per configuration: its rows' energy (J)
    quality: dict[str, list[np.ndarray]]  # per metric, per configuration: its rows' values
    grid_cost_j: float
    true_energy: np.ndarray  # per configuration: the mean over all its rows
    true_quality: dict[str, np.ndarray]
    full_hv: dict[str, tuple[float, tuple[float, float]]]  # per metric: (hypervolume, its reference)

    @classmethod
    def from_table(
        cls,
        df: pd.DataFrame,
        energy_col: str,
        qualities: Sequence[tuple[str, str]],
        config_cols: Sequence[str],
    ) -> Oracle:
        """From a table whose `energy_col` is in joules; rows without a finite energy are dropped."""
        metrics = [m for m, _ in qualities]
        df = df[np.isfinite(df[energy_col].astype(float))]
        groups = list(df.groupby(list(config_cols), dropna=False, sort=True))
        if not groups:
            raise ValueError(f"no row has a finite {energy_col}")
        configs = pd.DataFrame(
            [k if isinstance(k, tuple) else (k,) for k, _ in groups], columns=list(config_cols)
        )
        energy = [g[energy_col].to_numpy(dtype=float) for _, g in groups]
        quality = {m: [g[m].to_numpy(dtype=float) for _, g in groups] for m in metrics}
        space = SearchSpace(configs, max_units=[len(e) for e in energy])
        true_e = np.array([e.mean() for e in energy])
        true_q = {
            m: np.array([np.nanmean(q) if np.isfinite(q).any() else np.nan for q in quality[m]])
            for m in metrics
        }
        full = {m: hypervolume(true_e, true_q[m], s) for m, s in qualities}
        return cls(
            space, list(qualities), energy, quality, float(sum(e.sum() for e in energy)), true_e, true_q, full
        )

    def measure(
        self, config: int, units: int, drawn: list[list[int]], rng: np.random.Generator
    ) -> Measurement:
        """Draw `units` rows of `config` not drawn yet (`drawn[config]` records them)."""
        left = [i for i in range(len(self.energy[config])) if i not in drawn[config]]
        take = [int(i) for i in rng.permutation(left)[:units]]
        drawn[config].extend(take)
        e = self.energy[config][take]
        return Measurement(
            units=len(take),
            cost_j=float(e.sum()),
            energy=tuple(e.tolist()),
            quality={m: tuple(self.quality[m][config][take].tolist()) for m in self.quality},
        )

    def hypervolume_fractions(self, strategy: Strategy) -> tuple[float, ...]:
        """Per metric (in `qualities` order): the reported front's hypervolume (at the true means) / the
        full table's."""
        fractions = []
        for metric, sense in self.qualities:
            full, ref = self.full_hv[metric]
            members = strategy.front()[metric]
            hv, _ = hypervolume(self.true_energy[members], self.true_quality[metric][members], sense, ref)
            fractions.append(hv / full if full > 0 else float("nan"))
        return tuple(fractions)

    def hypervolume_fraction(self, strategy: Strategy) -> float:
        """The smallest over metrics of `hypervolume_fractions`."""
        return float(min(self.hypervolume_fractions(strategy)))

    def notes(self, df: pd.DataFrame, config_cols: Sequence[str], taken: set[str]) -> list[str]:
        """What the table's shape means for the replay: configurations with one row (no repeats: no CI,
        and a first measurement is all there is), and columns outside `config_cols` (and `taken`) that
        vary within a configuration, whose rows are then drawn as if they were repeats."""
        out = []
        single = int(sum(len(e) == 1 for e in self.energy))
        if single:
            out.append(
                f"{single} of {len(self.energy)} configurations have one row: no repeats, so no CI"
                " (their front is plain dominance of single values, and a search can measure them once)."
            )
        candidates, _ = configuration_keys(df, taken | set(REPEAT_COLUMNS), [])
        by_config = df.groupby(list(config_cols), dropna=False, sort=False)
        for col in candidates:
            if col in config_cols:
                continue
            within = by_config[col].nunique(dropna=False)
            if within.max() > 1:
                out.append(
                    f"column {col} varies within configurations ({int(within.max())} values in one,"
                    f" {df[col].nunique(dropna=False)} in all) but is not in --config-cols: its rows are"
                    f" drawn as repeats of one configuration and averaged; if they are not repeats (e.g."
                    f" datasets), name it in --group or --config-cols."
                )
        return out


def replay(oracle: Oracle, strategy: Strategy, seed: int) -> list[tuple[float, tuple[float, ...]]]:
    """Run `strategy` against the oracle until it stops; the curve (energy fraction, hypervolume
    fraction per metric) after each measurement, starting at (0, 0…)."""
    rng = np.random.default_rng(seed)
    drawn: list[list[int]] = [[] for _ in range(len(oracle.space))]
    curve = [(0.0, tuple(0.0 for _ in oracle.qualities))]
    while (ask := strategy.ask()) is not None:
        strategy.tell(ask.config, oracle.measure(ask.config, ask.units, drawn, rng))
        curve.append((strategy.spent_j / oracle.grid_cost_j, oracle.hypervolume_fractions(strategy)))
    return curve


def bench(
    oracle: Oracle, strategies: Sequence[str], budget: Budget, seeds: int, first_units: int = 2
) -> tuple[pd.DataFrame, dict[str, list[list[tuple[float, tuple[float, ...]]]]]]:
    """Each strategy once per seed: (one row per strategy, seed and metric at the end, the curves).
    `grid_energy_predicted_fraction`: the strategy's own estimate of the grid's energy at the end, over
    the true one — an energy-fraction budget is of that estimate, so where it is above 1 the strategy
    may spend above the budget's share of the true grid. `energy_to_hv95`: the energy fraction at which
    the run first reached `HV95` of the metric's hypervolume (inf: never), kept per run so that the
    summary's median can be recomputed from the CSV alone."""
    rows, curves = [], {}
    for name in strategies:
        curves[name] = []
        for seed in range(seeds):
            strategy = STRATEGIES[name](
                oracle.space, oracle.qualities, budget, seed=seed, first_units=first_units
            )
            curve = replay(oracle, strategy, seed)
            curves[name].append(curve)
            spent, fractions = curve[-1]
            predicted = strategy.grid_cost_j() / oracle.grid_cost_j
            for i, ((metric, _), hv) in enumerate(zip(oracle.qualities, fractions, strict=True)):
                reach = _first_reaching(curve, i, HV95)
                values = (name, seed, metric, spent, hv, predicted, reach)
                rows.append(dict(zip(BENCH_COLUMNS, values, strict=True)))
    return pd.DataFrame(rows, columns=list(BENCH_COLUMNS)), curves


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and metric, over the seeds: the median of each fraction at the end, the largest
    energy fraction, the 10th percentile of the hypervolume fraction, and the median energy fraction
    at which 95 % of the hypervolume was first reached (a run that never reached it counts as
    infinite)."""
    g = results.groupby(["strategy", "metric"], sort=False)
    return pd.DataFrame(
        {
            "seeds": g.size(),
            "energy_fraction_median": g["energy_fraction"].median(),
            "energy_fraction_max": g["energy_fraction"].max(),
            "hypervolume_fraction_median": g["hypervolume_fraction"].median(),
            "hypervolume_fraction_p10": g["hypervolume_fraction"].quantile(0.1),
            "energy_to_hv95_median": g["energy_to_hv95"].median(),
        }
    ).rename_axis([None, None])  # printed as before: the rows' labels without a line naming them


def over_budget(results: pd.DataFrame, budget: float) -> list[str]:
    """One line per strategy that spent more than `budget` of the true grid's energy in some run: in how
    many runs, by how much at most, and why (the grid's predicted energy above the true one, or a
    configuration that cost more than predicted)."""
    runs = results.drop_duplicates(["strategy", "seed"])
    out = []
    for name, r in runs.groupby("strategy", sort=False):
        over = r[r["energy_fraction"] > budget * (1 + 1e-9)]
        if over.empty:
            continue
        grid = int((over["grid_energy_predicted_fraction"] > 1).sum())
        why = []
        if grid:
            why.append(
                f"in {grid} the grid's energy was predicted above the true (up to"
                f" {over['grid_energy_predicted_fraction'].max():.2f}×), so the budget's share was too"
            )
        if len(over) - grid:
            why.append(f"in {len(over) - grid} a configuration cost more than the cost model predicted")
        out.append(
            f"{name} went over its budget of {budget:g} in {len(over)} of {len(r)} runs, by up to"
            f" {over['energy_fraction'].max() - budget:.3f} of the grid's energy: {'; '.join(why)}"
            " (a budget is checked against predictions before measuring)."
        )
    return out


def _first_reaching(run: list[tuple[float, tuple[float, ...]]], metric: int, level: float) -> float:
    return next((x for x, y in run if y[metric] >= level), float("inf"))


def plot_curves(curves: dict[str, list[list[tuple[float, float]]]], path: Path, title: str) -> None:
    """The median over seeds of the hypervolume fraction reached by each energy fraction (the smallest
    over the metrics), per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(x for runs in curves.values() for run in runs for x, _ in run)
    grid = np.linspace(0.0, top, 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, runs in curves.items():
        reached = np.array([_step([(x, min(y)) for x, y in run], grid) for run in runs])
        med = np.median(reached, axis=0)
        ax.plot(grid, med, label=f"{name} (median of {len(runs)})")
        ax.fill_between(
            grid, np.quantile(reached, 0.1, axis=0), np.quantile(reached, 0.9, axis=0), alpha=0.15
        )
    ax.axhline(0.95, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("energy spent / full grid's energy")
    ax.set_ylabel("hypervolume / full grid's (smallest over metrics)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _step(run: list[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """A curve's value at each point of `grid`: the last value reached at or before it."""
    xs = np.array([x for x, _ in run])
    ys = np.array([y for _, y in run])
    idx = np.searchsorted(xs, grid, side="right") - 1
    return ys[np.clip(idx, 0, None)]
