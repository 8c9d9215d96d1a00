"""Adaptive search over a grid's configurations for the energy–quality front(s), behind ask/tell.

A strategy chooses which configuration of a finite grid to measure next: `ask()` returns an `Ask`
(a configuration and how many units to measure), `tell(config, measurement)` gives it what was
measured. The same strategy runs inside Ray Tune (`t2a_ray.orchestrator.tune_searcher`: one unit is one
trial, every repeat and prompt of a configuration) and in a replay of a finished table
(`t2a_ray.analysis.search_replay`: one unit is one row, a repeat drawn at random). Nothing here
imports Ray: the state of a search is its measurements, so a resumed sweep rebuilds it by telling
the strategy every finished trial again.

Budgets (`Budget`): `trials` counts asks; `energy_j` and `energy_fraction` count the energy spent
measuring, and a configuration is asked for only while what was spent, plus the predicted cost of
what is in flight and of the configuration itself, stays within the budget — so a search overshoots
only by the error of those predictions. A fraction is of the whole grid's energy, which is itself
predicted (what was measured, plus the cost model's prediction for the rest), so it can be off by the
error of that prediction too; `benchmarks/results/search_bench.md` shows by how much.

Cost model (`fit_log_linear`): energy is close to linear in steps and proportional to batch, so
log(energy) is fitted as a per-group offset (a group: the values of the non-numeric axes, e.g. the
model) plus a slope on the log of each numeric axis, shared and per group, by ridge regression towards
"proportional" (slope 1) for axes whose values are all positive. It predicts both the energy objective
and the cost of measuring.

`ParetoSearch` (the default):
1. the cheapest configuration of each group first: the low-energy end of every front, and the data
   the cost model needs;
2. then the configuration with the largest *optimistic* hypervolume gain per predicted joule. Its
   quality is bounded from its two nearest measured neighbours in its group: the better of their
   values, plus one standard error, plus the slope of the secant through them (the steepest secant
   seen, where the group has one point) times the distance (in normalised log-axis units) — but never
   better than the worst value the group measured improved by 1.5 × the largest improvement any
   group has shown over its measured range. For a quality that rises and saturates (concave), the last secant's
   extension is an upper bound, so a configuration is passed over only when even that bound cannot
   improve the front; the cap keeps a model whose low-steps quality is far behind (FAD's spread between
   models is wide) from borrowing another model's steep first secant across the whole axis, and from
   adding it again at every step of its walk. The better neighbour, not the nearest, so that one noisy
   row cannot sink the bound of the end of an axis. The search walks its group towards it one
   neighbour at a time, where the bound is tightest;
3. when no configuration can, extra repeats of the configurations whose front membership the noise
   leaves undecided (dominated by the means, not beyond the 95 % CIs), cheapest first;
4. then the cheapest configurations left (a bound drawn from a few noisy points can be wrong);
until the budget is spent or the grid is.

After the first configuration of each group (step 1: two units where it has them, which tell the noise), a
configuration is measured once first (one unit): one row places a step along an axis, or a model that turns
out behind, well enough, and halves what a search spends on them (most of what it measures); a configuration
measured once takes the noise of the others as its CI (`pooled_ci`), for the front and for step 3.

`RandomSearch` and `CheapestFirst` are the baselines, `OptunaTPE` (Optuna's multi-objective TPE; needs
`pip install optuna`) another searcher; `benchmarks/results/search_bench.md` compares them.
"""

from __future__ import annotations

import importlib.util
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from t2a_ray.analysis.fronts import default_reference_point, dominated_mask, hypervolume
from t2a_ray.analysis.stats import mean_ci
from t2a_ray.config import BUDGET_KINDS, Trial

_RIDGE_SLOPE = 0.3  # pull of each axis slope towards its prior (in units of one squared log residual)
_RIDGE_GROUP = 0.01  # pull of a group's offset towards the mean: an unseen group is predicted at the mean
# an untried part of a group is not expected to improve on what the group measured by more than this
# times the largest improvement any group has shown: the secant of a fast-rising model, extended over
# another model's whole axis, promises every model the best quality in the grid
_CAP = 1.5
_RIDGE_OWN = 0.3  # pull of a group's own slopes towards the shared ones


@dataclass(frozen=True)
class Budget:
    """How much a search may spend: `energy_fraction` of the grid's energy, `trials`, or `energy_j`."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise ValueError(f"budget kind {self.kind!r}: must be one of {', '.join(BUDGET_KINDS)}")
        if not self.value > 0:
            raise ValueError(f"budget {self.kind} = {self.value!r}: must be > 0")


@dataclass(frozen=True)
class Ask:
    config: int  # row of the search space's table
    units: int  # trials (in a sweep) or repeats (in a replay) to measure


@dataclass(frozen=True)
class Measurement:
    """What measuring `units` units of one configuration gave.

    `energy` and each `quality[metric]` are samples (one per row, or one value per configuration);
    their means are the configuration's point, their 95 % CIs its uncertainty. `cost_j` is the energy
    spent (None when unmetered: it then counts as nothing against an energy budget). A failed trial is
    a measurement without samples: its configuration is done, and on no front.
    """

    units: int
    cost_j: float | None
    energy: tuple[float, ...] = ()
    quality: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


class SearchSpace:
    """The grid's configurations (one row each) and their coordinates.

    A column whose values are all numbers (missing ones aside) and take two values or more is a numeric
    axis (coordinates: log of the value when all are positive, else the value, scaled to 0…1; a missing
    value sits at 0, and being missing is part of its group); any other column that varies forms the
    groups, with a missing value (None, NaN) a value of its own — a model without a `scheduler` is
    one group, not an error. Columns that do not vary are ignored. `max_units[c]`: how many units
    configuration c can take.
    """

    def __init__(self, configs: pd.DataFrame, max_units: Sequence[int] | None = None):
        self.configs = configs.reset_index(drop=True)
        n = len(self.configs)
        if n == 0:
            raise ValueError("a search space needs at least one configuration")
        values = {c: [_category(v) for v in self.configs[c]] for c in self.configs.columns}
        varying = [c for c in self.configs.columns if len(set(values[c])) > 1]
        self.axes = [c for c in varying if _is_numeric(self.configs[c])]
        self.group_cols = [c for c in varying if c not in self.axes]
        coords, prior, keys = [], [], [values[c] for c in self.group_cols]
        for axis in self.axes:
            x = pd.to_numeric(self.configs[axis], errors="coerce").to_numpy(dtype=float)
            present = np.isfinite(x)
            positive = bool(np.all(x[present] > 0))
            x = np.log(x, where=present, out=np.full(n, np.nan)) if positive else x
            lo, hi = np.nanmin(x), np.nanmax(x)
            coords.append(np.where(present, (x - lo) / (hi - lo), 0.0))
            prior.append(float(hi - lo) if positive else 0.0)  # proportional: slope 1 in log
            if not present.all():
                keys.append(list(present))
        self.coords = np.column_stack(coords) if coords else np.zeros((n, 0))
        self.slope_prior = np.asarray(prior)
        index: dict[tuple, int] = {}
        self.groups = np.array(
            [index.setdefault(k, len(index)) for k in zip(*keys, strict=True)] if keys else [0] * n
        )
        self.max_units = np.ones(n, dtype=int) if max_units is None else np.asarray(max_units, dtype=int)

    def __len__(self) -> int:
        return len(self.configs)

    def distance(self, a: int, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((self.coords[b] - self.coords[a]) ** 2).sum(axis=1))


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _category(v: object) -> object:
    """A configuration value as a group key: missing values are one value (None), and a value that
    cannot be hashed (a list, a mapping) is its repr."""
    if _missing(v):
        return None
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return v


def _is_numeric(s: pd.Series) -> bool:
    """Numbers (not booleans) wherever a value is present, at least two of them distinct."""
    present = [v for v in s if not _missing(v)]
    numbers = all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        for v in present
    )
    return numbers and len({float(v) for v in present}) > 1


def fit_log_linear(space: SearchSpace, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Predict a positive quantity (energy) for every configuration from its values at `index`.

    log(value) = intercept + offset[group] + Σ (slope_k + slope[group]_k) · coord_k, ridge-regularised:
    shared slopes towards the space's proportional prior, offsets and a group's own slopes towards 0 (an
    unseen group gets the mean offset and the shared slopes; a group measured at two points or more
    learns its own). Models differ in how their energy grows with steps (a vocoder's or a text
    encoder's fixed cost makes it sub-linear), so one shared slope mispredicts the expensive end of
    the grid, and with it an energy-fraction budget. Values that are not positive and finite are left
    out; with none left the result is all NaN.
    """
    ok = np.isfinite(values) & (values > 0)
    index, y = index[ok], np.log(values[ok])
    n, k = len(space), space.coords.shape[1]
    if index.size == 0:
        return np.full(n, np.nan)
    n_groups = int(space.groups.max()) + 1
    one_hot = np.zeros((n, n_groups))
    one_hot[np.arange(n), space.groups] = 1.0
    # the group's own slopes: its one-hot times each coordinate
    own = (one_hot[:, :, None] * space.coords[:, None, :]).reshape(n, n_groups * k)
    design = np.column_stack([np.ones(n), one_hot, space.coords, own])
    weight = np.concatenate(
        [[1e-6], np.full(n_groups, _RIDGE_GROUP), np.full(k, _RIDGE_SLOPE), np.full(n_groups * k, _RIDGE_OWN)]
    )
    prior = np.concatenate([[0.0], np.zeros(n_groups), space.slope_prior, np.zeros(n_groups * k)])
    x = design[index]
    lhs = x.T @ x + np.diag(weight)
    rhs = x.T @ y + weight * prior
    w = np.linalg.solve(lhs, rhs)
    return np.exp(design @ w)


def pooled_ci(samples: Sequence[Sequence[float]], ci: np.ndarray) -> np.ndarray:
    """`ci` (95 % CI half-widths of the means of `samples`), where a configuration has one sample, replaced
    by 1.96 × the median standard deviation of the configurations with two or more (none: left as is).

    One value says nothing of its own noise, and a CI of zero would let the noise of one row decide the
    front: a configuration measured once that came out a little below a cheaper one would be ruled out
    for good. This assumes the configurations of one grid have noise of one size (in the bench's
    tables, CLAP's is additive; FAD's and energy's grow with the value, so a row of a cheap
    configuration gets a wider CI than its own noise would give, and one of an expensive configuration
    a narrower one).
    """
    sd = np.array([np.std(x, ddof=1) if len(x) > 1 else np.nan for x in samples])
    if not np.isfinite(sd).any():
        return ci
    once = np.array([len(x) == 1 for x in samples])
    return np.where(once, 1.96 * float(np.nanmedian(sd)), ci)


class Strategy(ABC):
    """Ask/tell over a `SearchSpace`: bookkeeping, budget and cost model shared by every strategy.

    Subclasses implement `_choose`, which returns the next `Ask` among what the budget allows, or None.
    `qualities`: (metric, "max"|"min") pairs, each a front against the energy objective.
    `first_units`: units of a configuration's first measurement (at most its `max_units`); a strategy
    that measures a configuration first in another way overrides `_first_units` (see ParetoSearch).
    """

    name = "strategy"

    @classmethod
    def missing(cls) -> str | None:
        """What this strategy needs that is not installed (None: nothing)."""
        return None

    def __init__(
        self,
        space: SearchSpace,
        qualities: Sequence[tuple[str, str]],
        budget: Budget,
        seed: int = 0,
        first_units: int = 1,
    ):
        self.space, self.qualities, self.budget = space, list(qualities), budget
        self.rng = np.random.default_rng(seed)
        self.first_units = first_units
        n = len(space)
        self.units = np.zeros(n, dtype=int)  # units measured
        self.cost_j = np.zeros(n)  # energy spent on each configuration
        self.energy: list[list[float]] = [[] for _ in range(n)]
        self.quality: dict[str, list[list[float]]] = {m: [[] for _ in range(n)] for m, _ in qualities}
        self.pending: dict[int, int] = {}  # config -> units asked, not yet told
        self.spent_j = 0.0
        self.history: list[tuple[int, int]] = []  # (config, units) in the order told

    # ------------------------------------------------------------------ ask / tell

    def ask(self) -> Ask | None:
        """The next configuration to measure; None when nothing is to be asked now.

        While nothing is measured, one configuration at a time, the cheapest by the prior (the numeric
        axes cost more as they grow): the cost model needs a first point before it can keep a budget.
        """
        if not self.units.any():
            todo = self.unmeasured()
            if self.pending or todo.size == 0 or not self.affordable(todo[:1], 1)[0]:
                return None
            choice = self._first(int(self._cheapest(todo)[0]), opening=True)
        else:
            choice = self._choose()
        if choice is not None:
            self.pending[choice.config] = choice.units
        return choice

    def tell(self, config: int, m: Measurement) -> None:
        self.pending.pop(config, None)
        self.units[config] += m.units
        if m.cost_j is not None and math.isfinite(m.cost_j):
            self.cost_j[config] += m.cost_j
            self.spent_j += m.cost_j
        self.energy[config].extend(m.energy)
        for metric, _ in self.qualities:
            self.quality[metric][config].extend(m.quality.get(metric, ()))
        self.history.append((config, m.units))

    @property
    def asked(self) -> int:
        """Asks so far, told or in flight (a resumed search counts what it was told)."""
        return len(self.history) + len(self.pending)

    @property
    def finished(self) -> bool:
        """Nothing in flight and nothing more to ask."""
        if self.pending:
            return False
        return self._choose() is None

    # ------------------------------------------------------------------ what was measured

    def measured(self) -> np.ndarray:
        return np.flatnonzero(self.units > 0)

    def unmeasured(self) -> np.ndarray:
        todo = self.units == 0
        todo[list(self.pending)] = False
        return np.flatnonzero(todo)

    def point(self, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(energy mean, its 95 % CI, quality mean, its 95 % CI) of every configuration; NaN if unmeasured.
        A configuration measured once takes the others' noise as its CI (`pooled_ci`)."""
        e = [mean_ci(x) for x in self.energy]
        q = [mean_ci(x) for x in self.quality[metric]]
        return (
            np.array([v[0] for v in e]),
            pooled_ci(self.energy, np.array([v[1] for v in e])),
            np.array([v[0] for v in q]),
            pooled_ci(self.quality[metric], np.array([v[1] for v in q])),
        )

    def front(self) -> dict[str, np.ndarray]:
        """Per metric, the configurations on the measured front (beyond the 95 % CIs, as `fronts`)."""
        out = {}
        for metric, sense in self.qualities:
            e, ce, q, cq = self.point(metric)
            ok = np.isfinite(e) & np.isfinite(q)
            dom = dominated_mask(e, q, sense, ce, cq)
            out[metric] = np.flatnonzero(ok & ~dom)
        return out

    # ------------------------------------------------------------------ cost model and budget

    def predicted_energy(self) -> np.ndarray:
        """Energy objective of every configuration: its mean where measured, else the cost model's."""
        e = np.array([np.mean(x) if x else np.nan for x in self.energy])
        idx = np.flatnonzero(np.isfinite(e))
        pred = fit_log_linear(self.space, idx, e[idx])
        return np.where(np.isfinite(e), e, pred)

    def unit_cost(self) -> np.ndarray:
        """Energy of measuring one unit of every configuration: measured, else predicted (NaN: no data)."""
        done = self.units > 0
        per_unit = np.full(len(self.space), np.nan)
        per_unit[done] = self.cost_j[done] / self.units[done]
        idx = np.flatnonzero(done & (per_unit > 0))
        pred = fit_log_linear(self.space, idx, per_unit[idx])
        return np.where(done & (per_unit > 0), per_unit, pred)

    def grid_cost_j(self) -> float:
        """The whole grid's predicted energy: every configuration at its `max_units`."""
        return float(np.nansum(self.unit_cost() * self.space.max_units))

    def affordable(self, configs: np.ndarray, units: np.ndarray | int) -> np.ndarray:
        """Which of `configs` (each measured `units` more) the budget still allows."""
        configs = np.asarray(configs, dtype=int)
        if self.budget.kind == "trials":
            return np.full(configs.size, self.asked < self.budget.value)
        cost = self.unit_cost()
        if not np.isfinite(cost).any():  # no energy measured yet: one ask at a time
            return np.full(configs.size, not self.pending)
        in_flight = sum(cost[c] * u for c, u in self.pending.items() if np.isfinite(cost[c]))
        limit = self.budget.value
        if self.budget.kind == "energy_fraction":
            limit *= self.grid_cost_j()
        return self.spent_j + in_flight + cost[configs] * units <= limit

    def _first_units(self, configs: np.ndarray, opening: bool = False) -> np.ndarray:
        """The units of the first measurement of each of `configs` (at most its `max_units`); `opening`:
        they are the first configurations of their groups. The one place a strategy says how it first
        measures a configuration: here `first_units`, opening or not."""
        return np.minimum(self.first_units, self.space.max_units[configs])

    def _first(self, config: int, opening: bool = False) -> Ask:
        """The first measurement of `config` (`opening`: the first configuration of its group)."""
        return Ask(int(config), int(self._first_units(np.array([config]), opening)[0]))

    def _open(self) -> np.ndarray:
        """Configurations not measured nor in flight whose first measurement the budget allows."""
        todo = self.unmeasured()
        return todo[self.affordable(todo, self._first_units(todo))]

    def _cheapest(self, configs: np.ndarray) -> np.ndarray:
        """`configs` ordered by predicted unit cost (before any data: by the sum of their coordinates)."""
        cost = self.unit_cost()[configs]
        if not np.isfinite(cost).all():
            cost = self.space.coords[configs].sum(axis=1)
        return configs[np.lexsort((self.rng.random(configs.size), cost))]

    @abstractmethod
    def _choose(self) -> Ask | None:
        """The next ask within the budget, or None. Must not change the measurements or the budget."""


class RandomSearch(Strategy):
    """Baseline: an unmeasured configuration at random among those the budget allows."""

    name = "random"

    def _choose(self) -> Ask | None:
        ok = self._open()
        return self._first(int(self.rng.choice(ok))) if ok.size else None


class CheapestFirst(Strategy):
    """Baseline: the unmeasured configuration with the lowest predicted cost."""

    name = "cheapest"

    def _choose(self) -> Ask | None:
        ok = self._open()
        return self._first(int(self._cheapest(ok)[0])) if ok.size else None


class ParetoSearch(Strategy):
    """The cost-model strategy of the module docstring (steps 1–4).

    The first configuration of each group is measured with two units (or `first_units`, if more) where
    it has them, every other one once (one unit): most of what a search measures is a step on the way along a model's axis or a model
    that turns out behind, which one row places well enough; a row alone takes the noise the groups'
    first configurations showed as its CI (`pooled_ci`), and a configuration whose front membership
    that noise leaves undecided gets more units (step 3).
    """

    name = "pareto"

    def _first_units(self, configs: np.ndarray, opening: bool = False) -> np.ndarray:
        # a group's first: two units where there are two, whatever `first_units` (the noise a single row
        # borrows); every other: one
        units = max(2, self.first_units) if opening else 1
        return np.minimum(units, self.space.max_units[configs])

    def _choose(self) -> Ask | None:
        todo = self._open()
        units = self._first_units(todo)
        # 1. the cheapest configuration of each group not yet touched
        touched = set(self.space.groups[self.measured()]) | set(self.space.groups[list(self.pending)])
        fresh = np.array([c for c in todo if self.space.groups[c] not in touched], dtype=int)
        fresh = fresh[self.affordable(fresh, self._first_units(fresh, opening=True))] if fresh.size else fresh
        if fresh.size:
            first = [
                int(self._cheapest(fresh[self.space.groups[fresh] == g])[0])
                for g in set(self.space.groups[fresh])
            ]
            return self._first(int(self._cheapest(np.array(first))[0]), opening=True)
        # 2. the largest optimistic hypervolume gain per predicted joule; the group is walked towards it
        #    one neighbour at a time (the bound is tightest next to measured points)
        if todo.size:
            gain = self._optimistic_gain(todo)
            cost = self.unit_cost()[todo] * units
            score = gain / np.where(cost > 0, cost, np.nan)
            if np.nanmax(score, initial=0.0) > 0:
                best = np.flatnonzero(score == np.nanmax(score))
                target = int(todo[int(self.rng.choice(best)) if best.size > 1 else int(best[0])])
                group = todo[self.space.groups[todo] == self.space.groups[target]]
                step = group[self._frontier(group)]
                return self._first(int(step[np.argmin(self.space.distance(target, step))]))
        # 3. one more repeat of the cheapest configuration whose membership is undecided
        undecided = self._undecided()
        undecided = undecided[self.affordable(undecided, 1)] if undecided.size else undecided
        if undecided.size:
            return Ask(int(self._cheapest(undecided)[0]), 1)
        # 4. what the budget has left goes to the cheapest configurations not measured: an optimistic
        #    bound drawn from a few noisy points can be wrong, and the budget is what the user allowed
        return self._first(int(self._cheapest(todo)[0])) if todo.size else None

    def _frontier(self, todo: np.ndarray) -> np.ndarray:
        """Which of `todo` are nearest, in their group, to what the group has measured: the bound of
        step 2 holds next to measured points, so a group is explored one neighbour at a time."""
        measured = self.measured()
        groups = self.space.groups
        d = np.array(
            [
                self.space.distance(c, measured[groups[measured] == groups[c]]).min(initial=np.inf)
                for c in todo
            ]
        )
        nearest = {g: d[groups[todo] == g].min() for g in set(groups[todo])}
        return np.array([d[i] <= nearest[groups[c]] + 1e-12 for i, c in enumerate(todo)], dtype=bool)

    def _optimistic_gain(self, candidates: np.ndarray) -> np.ndarray:
        """Σ over metrics of the hypervolume each candidate would add at its optimistic quality, as a
        fraction of the box between the reference point and the best values (in flight counted at theirs).
        """
        energy = self.predicted_energy()
        total = np.zeros(candidates.size)
        pending = np.array(list(self.pending), dtype=int)
        for metric, sense in self.qualities:
            e, _, q, _ = self.point(metric)
            measured = np.isfinite(e) & np.isfinite(q)
            if not measured.any():
                continue
            optimistic = self._optimistic_quality(metric, sense)
            pts_e = np.concatenate([e[measured], energy[pending]])
            pts_q = np.concatenate([q[measured], optimistic(pending)])
            cand_q = optimistic(candidates)
            # the reference: the whole grid's worst (predicted) energy, the worst quality measured
            ref_e, _ = default_reference_point(energy, np.zeros_like(energy), sense)
            _, ref_q = default_reference_point(e[measured], q[measured], sense)
            base, _ = hypervolume(pts_e, pts_q, sense, (ref_e, ref_q))
            best_q = (
                np.nanmax(np.append(pts_q, cand_q)) if sense == "max" else np.nanmin(np.append(pts_q, cand_q))
            )
            box = (ref_e - np.nanmin(energy)) * abs(ref_q - best_q)
            if not box > 0:
                continue
            for i, c in enumerate(candidates):
                if np.isfinite(energy[c]) and np.isfinite(cand_q[i]):
                    hv, _ = hypervolume(
                        np.append(pts_e, energy[c]), np.append(pts_q, cand_q[i]), sense, (ref_e, ref_q)
                    )
                    total[i] += max(hv - base, 0.0) / box
        return total

    def _optimistic_quality(self, metric: str, sense: str):
        """A function: configurations → their optimistic quality (step 2 of the module docstring)."""
        _, _, q, _ = self.point(metric)
        sign = -1.0 if sense == "max" else 1.0
        cost = sign * q  # lower is better
        se = np.array(
            [np.std(x, ddof=1) / math.sqrt(len(x)) if len(x) > 1 else np.nan for x in self.quality[metric]]
        )
        # one sample says nothing of its noise: take the median of the others' (none known: no margin)
        se = np.where(np.isfinite(se), se, np.nanmedian(se) if np.isfinite(se).any() else 0.0)
        measured = np.flatnonzero(np.isfinite(cost))
        groups, dist = self.space.groups, self.space.distance

        def nearest_two(c: int) -> tuple[np.ndarray, np.ndarray]:
            members = measured[(groups[measured] == groups[c]) & (measured != c)]
            d = dist(c, members)
            order = np.argsort(d, kind="stable")[:2]
            return members[order], d[order]

        def secant(a: int, b: int) -> float:
            gap = float(dist(a, np.array([b]))[0])
            return abs(cost[a] - cost[b]) / gap if gap > 0 else math.nan

        slopes = [secant(a, nn[0]) for a in measured for nn in [nearest_two(a)[0]] if nn.size]
        slopes = [s for s in slopes if math.isfinite(s)]
        span = float(np.ptp(cost[measured])) if measured.size else 0.0
        # a group with one point has no secant of its own: take the steepest seen (optimistic)
        default_slope = float(np.max(slopes)) if slopes else max(span, 1e-12)
        best = float(np.min(cost[measured])) if measured.size else math.nan
        # the largest improvement any group has shown over what it measured: a group is not expected to
        # improve by more than the best-explored group did (none with two points: no cap)
        rises = [
            float(np.max(cost[members]) - np.min(cost[members]))
            for g in set(groups[measured])
            for members in [measured[groups[measured] == g]]
            if members.size > 1
        ]
        cap = _CAP * max(rises) if rises else math.inf

        def bound(configs: np.ndarray) -> np.ndarray:
            out = np.full(configs.size, np.nan)
            for i, c in enumerate(configs):
                if np.isfinite(cost[c]):
                    out[i] = cost[c] - se[c]
                    continue
                nn, d = nearest_two(c)
                if nn.size == 0:  # an untouched group: as good as the best seen, plus one slope
                    out[i] = best - default_slope
                    continue
                slope = secant(nn[0], nn[1]) if nn.size == 2 else math.nan
                slope = slope if math.isfinite(slope) else default_slope
                # from the better of the two nearest (one noisy row must not sink a group's bound) …
                start = float(np.min(cost[nn] - se[nn]))
                # … and the group improves on the worst it measured by no more than the cap
                worst = float(np.max(cost[measured[groups[measured] == groups[c]]])) - se[nn[0]]
                out[i] = max(start - slope * d[0], worst - cap)
            return sign * out

        return bound

    def _undecided(self) -> np.ndarray:
        """Measured configurations with units left that the means put off a front and the CIs do not."""
        out = np.zeros(len(self.space), dtype=bool)
        for metric, sense in self.qualities:
            e, ce, q, cq = self.point(metric)
            ok = np.isfinite(e) & np.isfinite(q)
            plain = dominated_mask(e, q, sense)
            beyond = dominated_mask(e, q, sense, ce, cq)
            out |= ok & plain & ~beyond
        out &= self.units < self.space.max_units
        out[list(self.pending)] = False
        return np.flatnonzero(out)


class OptunaTPE(Strategy):
    """Optuna's multi-objective TPE sampler (needs the optional `optuna`): each column of the grid is a
    parameter (numeric axes as the index of their sorted values, so their order counts). A suggestion
    that is not a grid point is told as failed, one already measured is told its values, one the budget
    does not allow is skipped; after 100 such suggestions in a row, a random affordable configuration."""

    name = "optuna-tpe"
    _TRIES = 100

    @classmethod
    def missing(cls) -> str | None:
        return None if importlib.util.find_spec("optuna") else "needs optuna: pip install optuna"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            import optuna
        except ImportError:
            raise ValueError("strategy optuna-tpe needs optuna: pip install optuna") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        directions = ["minimize"] + [
            "maximize" if sense == "max" else "minimize" for _, sense in self.qualities
        ]
        seed = int(self.rng.integers(2**31))
        self._study = optuna.create_study(
            directions=directions, sampler=optuna.samplers.TPESampler(seed=seed)
        )
        configs, axes = self.space.configs, self.space.axes
        cols = axes + self.space.group_cols
        cats = {c: [_category(v) for v in configs[c]] for c in cols}
        # each column's values in order (an axis by value), a missing one last
        self._values = {
            c: sorted(set(v), key=lambda x, a=c in axes: (x is None, x if a and x is not None else str(x)))
            for c, v in cats.items()
        }
        self._dists = {
            c: optuna.distributions.IntDistribution(0, len(v) - 1)
            if c in axes
            else optuna.distributions.CategoricalDistribution([str(x) for x in v])
            for c, v in self._values.items()
        }
        self._by_name = {c: {str(x): x for x in v} for c, v in self._values.items()}
        self._index = {k: i for i, k in enumerate(zip(*cats.values(), strict=True))} if cols else {(): 0}
        self._trials: dict[int, object] = {}  # config -> its Optuna trial, until told

    def _point(self, config: int) -> list[float]:
        means = [float(np.mean(self.energy[config]))]
        return means + [float(np.mean(self.quality[m][config])) for m, _ in self.qualities]

    def _choose(self) -> Ask | None:
        ok = self._open()
        if ok.size == 0:
            return None
        for _ in range(self._TRIES):
            trial = self._study.ask(self._dists)
            key = tuple(
                self._values[c][v] if c in self.space.axes else self._by_name[c][v]
                for c, v in trial.params.items()
            )
            c = self._index.get(key)
            if c is not None and c in ok:
                self._trials[c] = trial
                return self._first(c)
            if c is not None and self.units[c] > 0 and self.energy[c]:
                self._study.tell(trial, self._point(c))
            else:
                self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        return self._first(int(self.rng.choice(ok)))

    def tell(self, config: int, m: Measurement) -> None:
        super().tell(config, m)
        trial = self._trials.pop(config, None)
        if trial is None:
            return
        if self.energy[config] and all(self.quality[q][config] for q, _ in self.qualities):
            self._study.tell(trial, self._point(config))
        else:
            self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)


STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (ParetoSearch, RandomSearch, CheapestFirst, OptunaTPE)
}


# The report's table for a search run, keyed like the other report tables: title, and the printed detail.
TITLES = {
    "search_predicted": (
        "Search: configurations not measured",
        " (energy per waveform predicted by the search's cost model from the measured configurations:"
        " a prediction, not a measurement)",
    ),
}


def trial_grid(trials: Sequence[Trial]) -> pd.DataFrame:
    """One row per trial: `trial_id`, `model` (its id, as in the results) and its parameters. Where two
    model entries share an id (another repo, revision or options), `model_spec` tells them apart."""
    grid = pd.DataFrame([{"trial_id": t.trial_id, "model": t.model.id, **t.params} for t in trials])
    specs = pd.Series([t.model.key for t in trials])
    if (specs.groupby(grid["model"]).nunique() > 1).any():
        grid.insert(2, "model_spec", specs)
    return grid


def predicted_table(grid: pd.DataFrame, measured_energy_j: pd.Series) -> pd.DataFrame:
    """The grid's configurations a search left unmeasured, each with the energy per waveform its cost
    model predicts (`predicted_energy_per_waveform_j`), and only the columns that vary over the grid.

    `grid`: one row per configuration (`trial_id` and its parameters); `measured_energy_j`: the mean energy
    per waveform of the measured configurations, by `trial_id`.
    """
    space = SearchSpace(grid.drop(columns="trial_id"))
    values = grid["trial_id"].map(measured_energy_j).to_numpy(dtype=float)
    measured = np.isfinite(values)
    predicted = fit_log_linear(space, np.flatnonzero(measured), values[measured])
    shown = [c for c in grid.columns if c != "trial_id" and grid[c].nunique(dropna=False) > 1]
    return grid.loc[~measured, shown].assign(predicted_energy_per_waveform_j=predicted[~measured])
