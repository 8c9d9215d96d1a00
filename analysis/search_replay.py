"""Replay a search against a finished table, as `t2a-ray search-bench` does.

The table is an oracle: a configuration (its `config_cols` values) has its rows as repeats; measuring
one unit of it draws one of its rows at random, without replacement (a configuration with one row
answers the same each time, and only once). A first measurement draws two rows where there are two,
so that its mean has a CI. Measuring costs the rows' energy, so the whole grid costs the sum of the
energy column.

A search is scored by its *reported* front — per metric, the configurations its own measurements put
on the front beyond their 95 % CIs — evaluated at the full table's means: the hypervolume of those
points against the full table's reference point, as a fraction of the full table's hypervolume
(the smallest fraction over the quality metrics). Energy is what the search spent, as a fraction of
the full grid's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from t2a_ray.analysis.fronts import hypervolume
from t2a_ray.analysis.search import STRATEGIES, Budget, Measurement, SearchSpace, Strategy

#: Joules per unit of an energy column (`--energy-unit`).
BENCH_COLUMNS = ("strategy", "seed", "energy_fraction", "hypervolume_fraction")


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

    def hypervolume_fraction(self, strategy: Strategy) -> float:
        """The smallest over metrics of the reported front's hypervolume (at the true means) / the full."""
        fractions = []
        for metric, sense in self.qualities:
            full, ref = self.full_hv[metric]
            members = strategy.front()[metric]
            hv, _ = hypervolume(self.true_energy[members], self.true_quality[metric][members], sense, ref)
            fractions.append(hv / full if full > 0 else float("nan"))
        return float(min(fractions))


def replay(oracle: Oracle, strategy: Strategy, seed: int) -> list[tuple[float, float]]:
    """Run `strategy` against the oracle until it stops; the curve (energy fraction, hypervolume
    fraction) after each measurement, starting at (0, 0)."""
    rng = np.random.default_rng(seed)
    drawn: list[list[int]] = [[] for _ in range(len(oracle.space))]
    curve = [(0.0, 0.0)]
    while (ask := strategy.ask()) is not None:
        strategy.tell(ask.config, oracle.measure(ask.config, ask.units, drawn, rng))
        curve.append((strategy.spent_j / oracle.grid_cost_j, oracle.hypervolume_fraction(strategy)))
    return curve


def bench(
    oracle: Oracle, strategies: Sequence[str], budget: Budget, seeds: int, first_units: int = 2
) -> tuple[pd.DataFrame, dict[str, list[list[tuple[float, float]]]]]:
    """Each strategy once per seed: (one row per strategy and seed at the budget, the curves)."""
    rows, curves = [], {}
    for name in strategies:
        curves[name] = []
        for seed in range(seeds):
            strategy = STRATEGIES[name](
                oracle.space, oracle.qualities, budget, seed=seed, first_units=first_units
            )
            curve = replay(oracle, strategy, seed)
            curves[name].append(curve)
            rows.append(dict(zip(BENCH_COLUMNS, (name, seed, *curve[-1]), strict=True)))
    return pd.DataFrame(rows, columns=list(BENCH_COLUMNS)), curves


def summary(results: pd.DataFrame, curves: dict[str, list[list[tuple[float, float]]]]) -> pd.DataFrame:
    """Per strategy, over the seeds: the median of each fraction at the end, the largest energy
    fraction, the 10th percentile of the hypervolume fraction, and the median energy fraction at which
    95 % of the hypervolume was first reached (a run that never reached it counts as infinite)."""
    g = results.groupby("strategy", sort=False)
    return pd.DataFrame(
        {
            "seeds": g.size(),
            "energy_fraction_median": g["energy_fraction"].median(),
            "energy_fraction_max": g["energy_fraction"].max(),  # a budget overshot by prediction errors
            "hypervolume_fraction_median": g["hypervolume_fraction"].median(),
            "hypervolume_fraction_p10": g["hypervolume_fraction"].quantile(0.1),
            "energy_to_hv95_median": pd.Series(
                {
                    name: np.median([_first_reaching(run, 0.95) for run in runs])
                    for name, runs in curves.items()
                }
            ),
        }
    )


def _first_reaching(run: list[tuple[float, float]], level: float) -> float:
    return next((x for x, y in run if y >= level), float("inf"))


def plot_curves(curves: dict[str, list[list[tuple[float, float]]]], path: Path, title: str) -> None:
    """The median over seeds of the hypervolume fraction reached by each energy fraction, per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(x for runs in curves.values() for run in runs for x, _ in run)
    grid = np.linspace(0.0, top, 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, runs in curves.items():
        reached = np.array([_step(run, grid) for run in runs])
        med = np.median(reached, axis=0)
        ax.plot(grid, med, label=f"{name} (median of {len(runs)})")
        ax.fill_between(
            grid, np.quantile(reached, 0.1, axis=0), np.quantile(reached, 0.9, axis=0), alpha=0.15
        )
    ax.axhline(0.95, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("energy spent / full grid's energy")
    ax.set_ylabel("hypervolume / full grid's hypervolume")
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
