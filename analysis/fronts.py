"""Pareto fronts of energy (to minimise) against a quality metric (to maximise or minimise).

Beyond noise. Each configuration's means carry 95 % confidence-interval half-widths (zero for a table
without repeats). Configuration i is *cheaper beyond noise* than j when their energy intervals are
disjoint with i's below — E_i + c_i < E_j − c_j — and *better beyond noise* in quality likewise, on the
quality's own side. Both are strict orders (irreflexive, transitive).

Dominance. i dominates j when

    (a) i is cheaper beyond noise, and j is not better than i beyond noise; or
    (b) i is better beyond noise, and j is not cheaper than i beyond noise.

With zero CIs "beyond noise" is plain `<`, and this is plain Pareto dominance (lower energy and no worse
quality, or better quality and no more energy). A configuration whose quality is merely noisy gains
nothing: costing more beyond noise is enough to be dominated, unless it is better beyond noise.

Cycles. Dominance by (a) alone and by (b) alone cannot cycle (each is a strict order), but the two
together can: four configurations suffice (`tests/analysis/test_analysis_fronts.py` holds one), each
dominated by the next. Then "the configurations nobody dominates" may be empty. So:

The front is the finite configurations j that

    1. nothing dominates by (a), and
    2. whatever dominates j by (b) lies on a cycle with j (in j's strongly connected component of the
       dominance graph: j reaches it back through dominance).

Without cycles (the usual case, and always with zero CIs) this is exactly the undominated points; with
zero CIs, the plain Pareto front. It is never empty where a finite point exists: the components form an
acyclic graph, so some component S has no dominance into it from outside; (a) restricted to S is a
strict order, so some j in S is dominated by (a) by nothing in S, and by nothing outside S; j's (b)
dominators are in S. And by 1., a configuration that costs more beyond noise and is not better beyond
noise than another is never on the front. `Classes.on_cycle` marks front points kept by rule 2.

Ruled out, or indistinguishable from the front. A configuration off the front is *ruled out* when
another beats it beyond noise in both objectives — its pessimistic ends at least as good as the
other's optimistic ends in both, and better in one (with zero CIs: plain Pareto dominance). Any other
configuration off the front is *indistinguishable from the front*, shown beside it, never on it, with
what the measurements cannot tell apart: `quality` (something cheaper beyond noise has its quality
within noise), `energy` (something better beyond noise has its energy within noise), or both. With zero
CIs nothing is indistinguishable. Front, band and ruled out split the finite points.

Chains. Noise makes "not better beyond noise" intransitive: along a chain of configurations each a
little better and costlier than the last, within noise, each is dominated by the one before, and only
the cheapest is on the front — the top of the chain stands beside it, though it may be better beyond
noise than the front. That is the rule's honesty: more repeats separate the chain.

Identical points never dominate each other: duplicates are on the front together or off it together.

Hypervolume: the area dominated by the points and bounded by a reference point (energy_ref,
quality_ref), in energy units × quality units. The default reference is the worst value of each
objective in the group pushed out by 10 % of its range (so the extreme points count), and it is reported
with the value: a hypervolume means nothing without it. `hv_norm` divides it by the box from the ideal
point (lowest energy, best quality) to the reference: 1 would be one configuration best in both.

Knee: the front point farthest from the straight line through the front's two extremes, on the side of
the ideal point, in coordinates scaled to the front's range — the best trade-off when neither objective
is preferred. Ties go to the lower energy, then the better quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t2a_ray.analysis.values import fmt, sort_key
from t2a_ray.schema import QUALITY_SENSES

# The rule and the band in words, for the printout and the page (the module docstring is the full account).
RULE = (
    "a configuration is dominated when another is cheaper beyond noise (their 95 % intervals disjoint) "
    "and it is not better beyond noise in quality, or another is better beyond noise in quality and it "
    "is not cheaper beyond noise; the front is the configurations nothing dominates (where dominance "
    "runs in a cycle, those dominated only in quality, from their own cycle). Without repeats (plain "
    "dominance) the intervals are points and this is the ordinary Pareto front"
)
BAND = (
    "configurations off the front that nothing beats beyond noise in both energy and quality: the "
    "measurements cannot tell them apart from the front in the objective named (quality: something "
    "cheaper beyond noise has their quality within noise). Shown beside the front, never on it"
)
_CELLS = 4_000_000  # pairs compared at once (bounds memory to a few arrays of ~4 M booleans)
# `Classes.indistinguishable_in`: what the measurements cannot tell apart from a dominating configuration.
IN_QUALITY, IN_ENERGY, IN_BOTH = "quality", "energy", "energy and quality"


def _cost(quality: np.ndarray, sense: str) -> np.ndarray:
    if sense not in QUALITY_SENSES:
        raise ValueError(f"sense = {sense!r}: must be 'max' or 'min'")
    q = np.asarray(quality, dtype=np.float64)
    return -q if sense == "max" else q


def _ci(ci: np.ndarray | Sequence[float] | None, n: int) -> np.ndarray:
    if ci is None:
        return np.zeros(n)
    c = np.asarray(ci, dtype=np.float64)
    return np.where(np.isfinite(c), np.abs(c), 0.0)


@dataclass(frozen=True)
class Classes:
    """Where each point stands (see the module docstring), one entry per point given."""

    on_front: np.ndarray  # bool
    on_cycle: np.ndarray  # bool: on the front by rule 2, though a point on a cycle with it dominates it
    indistinguishable_in: np.ndarray  # object: None, or IN_QUALITY / IN_ENERGY / IN_BOTH (off the front)
    ruled_out: np.ndarray  # bool: off the front, beaten beyond noise in both objectives


class _Pairs:
    """The "beyond noise" comparisons of every point i against a block of points j (rows i, columns j)."""

    def __init__(self, e, c, ce, cq, ok):
        # Invalid points have empty intervals at +inf: beyond noise of nothing, and nothing is of them.
        self.e_hi = np.where(ok, e + ce, np.inf)
        self.e_lo = np.where(ok, e - ce, np.inf)
        self.c_hi = np.where(ok, c + cq, np.inf)
        self.c_lo = np.where(ok, c - cq, np.inf)
        self.n = e.size

    def blocks(self):
        step = max(1, _CELLS // max(1, self.n))
        for start in range(0, self.n, step):
            yield slice(start, min(self.n, start + step))

    def block(self, j: slice):
        """(cheaper, better, dominates by (a), dominates by (b)) of every i over the points j."""
        cheaper = self.e_hi[:, None] < self.e_lo[None, j]  # i cheaper than j beyond noise
        better = self.c_hi[:, None] < self.c_lo[None, j]  # i better than j beyond noise
        j_cheaper = self.e_hi[None, j] < self.e_lo[:, None]
        j_better = self.c_hi[None, j] < self.c_lo[:, None]
        return cheaper, better, cheaper & ~j_better, better & ~j_cheaper

    def beats(self, j: slice):
        """i beats j beyond noise in both objectives: at least as good at its pessimistic ends as j at
        its optimistic ends in both, better in one."""
        le_e = self.e_hi[:, None] <= self.e_lo[None, j]
        le_c = self.c_hi[:, None] <= self.c_lo[None, j]
        strict = (self.e_hi[:, None] < self.e_lo[None, j]) | (self.c_hi[:, None] < self.c_lo[None, j])
        return le_e & le_c & strict


def classify(
    energy: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[float],
    sense: str = "max",
    energy_ci: np.ndarray | Sequence[float] | None = None,
    quality_ci: np.ndarray | Sequence[float] | None = None,
) -> Classes:
    """The front, its cycles and the indistinguishable band of the points (module docstring).

    Points with a NaN energy or quality neither dominate nor are dominated, and are off the front and
    out of the band. Missing CIs count as zero.
    """
    e = np.asarray(energy, dtype=np.float64)
    c = _cost(quality, sense)
    if e.shape != c.shape or e.ndim != 1:
        raise ValueError(f"energy and quality must be 1-D and of one length; got {e.shape} and {c.shape}")
    n = e.size
    ok = np.isfinite(e) & np.isfinite(c)
    pairs = _Pairs(e, c, _ci(energy_ci, n), _ci(quality_ci, n), ok)
    by_a, by_b, beaten = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    ties_quality, ties_energy = np.zeros(n, bool), np.zeros(n, bool)
    for j in pairs.blocks():
        cheaper, better, dom_a, dom_b = pairs.block(j)
        by_a[j], by_b[j] = dom_a.any(axis=0), dom_b.any(axis=0)
        beaten[j] = pairs.beats(j).any(axis=0)
        ties_quality[j] = (dom_a & ~better).any(axis=0)
        ties_energy[j] = (dom_b & ~cheaper).any(axis=0)
    front = ok & ~by_a & ~by_b
    on_cycle = np.zeros(n, bool)
    pending = np.flatnonzero(ok & ~by_a & by_b)  # rule 2 decides these
    if pending.size:
        on_cycle[pending] = _dominators_on_own_cycle(pairs, pending)
        front |= on_cycle
    band = ok & ~front & ~beaten
    labels = np.full(n, None, dtype=object)
    labels[band & ties_quality] = IN_QUALITY
    labels[band & ties_energy] = IN_ENERGY
    labels[band & ties_quality & ties_energy] = IN_BOTH
    return Classes(
        on_front=front, on_cycle=on_cycle, indistinguishable_in=labels, ruled_out=ok & ~front & beaten
    )


def _dominators_on_own_cycle(pairs: _Pairs, points: np.ndarray) -> np.ndarray:
    """For each of `points`: whether every point that dominates it by (b) is in its strongly connected
    component of the dominance graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = [], []
    for j in pairs.blocks():
        _, _, dom_a, dom_b = pairs.block(j)
        i, jj = np.nonzero(dom_a | dom_b)
        src.append(i)
        dst.append(jj + j.start)
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(pairs.n, pairs.n))
    _, component = connected_components(graph.tocsr(), directed=True, connection="strong")
    out = np.zeros(points.size, bool)
    for k, p in enumerate(points):
        _, _, _, dom_b = pairs.block(slice(p, p + 1))
        out[k] = bool(np.all(component[np.flatnonzero(dom_b[:, 0])] == component[p]))
    return out


def pareto_mask(
    energy: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[float],
    sense: str = "max",
    energy_ci: np.ndarray | Sequence[float] | None = None,
    quality_ci: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """True for each point on the front (`classify`; with no CIs, the plain Pareto front)."""
    return classify(energy, quality, sense, energy_ci, quality_ci).on_front


def dominated_mask(
    energy: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[float],
    sense: str = "max",
    energy_ci: np.ndarray | Sequence[float] | None = None,
    quality_ci: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """True for each point the measurements rule out (`Classes.ruled_out`): another beats it beyond noise
    in both objectives. Neither on the front nor indistinguishable from it; with no CIs, off the plain
    Pareto front."""
    return classify(energy, quality, sense, energy_ci, quality_ci).ruled_out


def default_reference_point(
    energy: np.ndarray | Sequence[float], quality: np.ndarray | Sequence[float], sense: str = "max"
) -> tuple[float, float]:
    """(energy_ref, quality_ref): each objective's worst value pushed out by 10 % of its range."""
    e = np.asarray(energy, dtype=np.float64)
    c = _cost(quality, sense)
    ok = np.isfinite(e) & np.isfinite(c)
    if not ok.any():
        return math.nan, math.nan
    e, c = e[ok], c[ok]

    def _out(x: np.ndarray) -> float:
        span = float(x.max() - x.min())
        return float(x.max()) + (0.1 * span if span > 0 else max(0.1 * abs(float(x.max())), 1e-12))

    c_ref = _out(c)
    return _out(e), (-c_ref if sense == "max" else c_ref)


def hypervolume(
    energy: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[float],
    sense: str = "max",
    reference: tuple[float, float] | None = None,
) -> tuple[float, tuple[float, float]]:
    """2-D hypervolume of the points against `reference` (default: `default_reference_point`).

    Returns (area in energy units × quality units, the reference point used). Dominated points and
    points beyond the reference add nothing, so this is also the hypervolume of the front.
    """
    e = np.asarray(energy, dtype=np.float64)
    c = _cost(quality, sense)
    ref = default_reference_point(e, quality, sense) if reference is None else reference
    r_e, r_c = float(ref[0]), float(_cost(np.array([ref[1]]), sense)[0])
    ok = np.isfinite(e) & np.isfinite(c) & (e < r_e) & (c < r_c)
    if not ok.any():
        return 0.0, (float(ref[0]), float(ref[1]))
    order = np.lexsort((c[ok], e[ok]))
    es, cs = e[ok][order], np.minimum.accumulate(c[ok][order])
    widths = np.diff(np.append(es, r_e))
    area = float(np.sum(widths * (r_c - cs)))
    return area, (float(ref[0]), float(ref[1]))


def knee_index(
    energy: np.ndarray | Sequence[float], quality: np.ndarray | Sequence[float], sense: str = "max"
) -> int:
    """Index (into the given points, meant to be a front) of the knee; see the module docstring."""
    e = np.asarray(energy, dtype=np.float64)
    c = _cost(quality, sense)
    if e.size == 0:
        raise ValueError("a knee needs at least one point")

    def _scale(x: np.ndarray) -> np.ndarray:
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    # With both objectives scaled to [0, 1], the line through the extremes of a front is e + c = 1, and
    # the distance from it towards the ideal point (0, 0) is (1 − e − c)/√2: the largest is the smallest
    # e + c.
    score = _scale(e) + _scale(c)
    order = np.lexsort((c, e, np.round(score, 12)))
    return int(order[0])


@dataclass(frozen=True)
class Front:
    """One Pareto front: a quality metric within one group of configurations."""

    metric: str
    sense: str
    group: tuple[tuple[str, object], ...]
    dominance: str  # "ci95" (beyond the 95 % CIs of the repeats) or "plain"
    n_points: int  # configurations with finite energy and quality in the group
    members: tuple  # index labels (of the configurations table) on the front, by increasing energy
    knee: object  # index label of the knee (None: no knee asked for)
    hypervolume: float
    hypervolume_norm: float  # hypervolume / the box from the ideal point to the reference (0…1)
    ref_energy: float
    ref_quality: float
    # Beside the front, never on it: (index label, IN_QUALITY | IN_ENERGY | IN_BOTH), by increasing energy.
    indistinguishable: tuple[tuple[object, str], ...] = ()
    on_cycle: tuple = ()  # members kept by rule 2 (dominated by a configuration on a cycle with them)

    @property
    def label(self) -> str:
        return front_label(self.metric, self.sense, self.group)


def front_label(metric: str, sense: str, group: Sequence[tuple[str, object]] = ()) -> str:
    """The `front` column of fronts.csv, e.g. ``clap_mean:max | dataset=audiocaps``."""
    base = f"{metric}:{sense}"
    if not group:
        return base
    return base + " | " + ", ".join(f"{k}={fmt(v)}" for k, v in group)


def compute_fronts(
    configs: pd.DataFrame,
    energy_col: str,
    qualities: Sequence[tuple[str, str]],
    group_cols: Sequence[str] = (),
    *,
    energy_ci_col: str | None = None,
    quality_ci_cols: dict[str, str] | None = None,
    knee: bool = True,
) -> list[Front]:
    """Fronts of `energy_col` against each (quality column, "max"|"min"), within each group.

    `configs` has one row per configuration (means); CI columns, when given, hold 95 % half-widths.
    Groups are sorted by their values, so the result does not depend on row order. `knee=False`: no
    knee (where the quality means nothing, none is recommended).
    """
    quality_ci_cols = quality_ci_cols or {}
    out: list[Front] = []
    groups = [((), configs)] if not group_cols else _sorted_groups(configs, list(group_cols))
    for metric, sense in qualities:
        if sense not in QUALITY_SENSES:
            raise ValueError(f"quality {metric!r}: sense {sense!r} must be 'max' or 'min'")
        for key, sub in groups:
            sub = sub.sort_index(kind="stable")  # ties (duplicates) resolve by label, not by row order
            e = sub[energy_col].to_numpy(dtype=np.float64, na_value=np.nan)
            q = sub[metric].to_numpy(dtype=np.float64, na_value=np.nan)
            ce = _col(sub, energy_ci_col)
            cq = _col(sub, quality_ci_cols.get(metric))
            ok = np.isfinite(e) & np.isfinite(q)
            if not ok.any():
                continue
            uses_ci = bool(np.any(_ci(ce, len(e))[ok] > 0) or np.any(_ci(cq, len(e))[ok] > 0))
            classes = classify(e, q, sense, ce, cq)
            idx = _by_energy(classes.on_front, e, _cost(q, sense))
            band = _by_energy(pd.notna(classes.indistinguishable_in), e, _cost(q, sense))
            labels = sub.index[idx].tolist()  # python scalars, not numpy ones
            knee_label = labels[knee_index(e[idx], q[idx], sense)] if knee and idx.size else None
            hv, ref = hypervolume(e[ok], q[ok], sense)
            ideal_box = (ref[0] - e[ok].min()) * abs(
                ref[1] - (q[ok].max() if sense == "max" else q[ok].min())
            )
            out.append(
                Front(
                    metric=metric,
                    sense=sense,
                    group=tuple(zip(group_cols, key, strict=True)),
                    dominance="ci95" if uses_ci else "plain",
                    n_points=int(ok.sum()),
                    members=tuple(labels),
                    knee=knee_label,
                    hypervolume=hv,
                    hypervolume_norm=float(hv / ideal_box) if ideal_box > 0 else math.nan,
                    ref_energy=ref[0],
                    ref_quality=ref[1],
                    indistinguishable=tuple(
                        zip(sub.index[band].tolist(), classes.indistinguishable_in[band], strict=True)
                    ),
                    on_cycle=tuple(sub.index[np.flatnonzero(classes.on_cycle)].tolist()),
                )
            )
    return out


def fronts_summary(
    fronts: Sequence[Front], configs: pd.DataFrame, label_cols: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per front: its size, the indistinguishable band beside it, dominance rule, hypervolume with
    its reference point, and knee (the column only where some front has one)."""
    rows = []
    for f in fronts:
        rows.append(
            {
                "front": f.label,
                "dominance": f.dominance,
                "configs": f.n_points,
                "on_front": len(f.members),
                "indistinguishable": len(f.indistinguishable),
                "hypervolume": f.hypervolume,
                "hv_norm": f.hypervolume_norm,
                "hv_ref_energy": f.ref_energy,
                "hv_ref_quality": f.ref_quality,
                "knee": None if f.knee is None else describe(configs.loc[f.knee], label_cols),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty and table["knee"].isna().all():
        table = table.drop(columns="knee")
    return table


def describe(row: pd.Series, label_cols: Sequence[str]) -> str:
    """A configuration in words: ``model=tango steps=50``."""
    return " ".join(f"{c}={fmt(row[c])}" for c in label_cols if c in row.index)


def _by_energy(mask: np.ndarray, energy: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of `mask`, by increasing energy, then better quality."""
    idx = np.flatnonzero(mask)
    return idx[np.lexsort((cost[idx], energy[idx]))]


def _col(df: pd.DataFrame, name: str | None) -> np.ndarray | None:
    if name is None or name not in df.columns:
        return None
    return df[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _sorted_groups(df: pd.DataFrame, cols: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    groups = [
        ((k if isinstance(k, tuple) else (k,)), sub) for k, sub in df.groupby(cols, dropna=False, sort=False)
    ]
    return sorted(groups, key=lambda g: tuple(sort_key(v) for v in g[0]))
