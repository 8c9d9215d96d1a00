"""Pareto fronts of energy (to minimise) against a quality metric (to maximise or minimise).

Dominance. Point a dominates b when a is at least as good in both objectives and better in one. With
repeats, each mean has a 95 % confidence interval, and a dominates b *beyond noise* when a's pessimistic
bound beats b's optimistic bound in both objectives:

    energy_a + ci_a ≤ energy_b − ci_b   and   quality_a − ci_a ≥ quality_b + ci_b   (quality to maximise)

with at least one of the two strict. This is plain dominance applied to interval ends, so with zero CIs
(a table without repeats) it *is* plain dominance; it is transitive, so every point off the front is
dominated by a point on it. A front drawn this way keeps every configuration that the measurements
cannot tell apart from the best — it is never smaller than the plain front.

Identical points never dominate each other: duplicates are on the front together or off it together.

Hypervolume: the area dominated by the points and bounded by a reference point (energy_ref,
quality_ref), in energy units × quality units. The default reference is the worst value of each
objective in the group pushed out by 10 % of its range (so the extreme points count), and it is reported
with the value: a hypervolume means nothing without it.

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

SENSES = ("max", "min")
_BLOCK = 2048  # rows of the pairwise comparison done at once (bounds memory to ~4 M booleans)


def _cost(quality: np.ndarray, sense: str) -> np.ndarray:
    if sense not in SENSES:
        raise ValueError(f"sense = {sense!r}: must be 'max' or 'min'")
    q = np.asarray(quality, dtype=np.float64)
    return -q if sense == "max" else q


def _ci(ci: np.ndarray | Sequence[float] | None, n: int) -> np.ndarray:
    if ci is None:
        return np.zeros(n)
    c = np.asarray(ci, dtype=np.float64)
    return np.where(np.isfinite(c), np.abs(c), 0.0)


def dominated_mask(
    energy: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[float],
    sense: str = "max",
    energy_ci: np.ndarray | Sequence[float] | None = None,
    quality_ci: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """True for each point dominated (beyond the CIs, when given) by another point.

    Points with a NaN energy or quality neither dominate nor are dominated; `pareto_mask` leaves them off.
    Missing CIs count as zero.
    """
    e = np.asarray(energy, dtype=np.float64)
    c = _cost(quality, sense)
    if e.shape != c.shape or e.ndim != 1:
        raise ValueError(f"energy and quality must be 1-D and of one length; got {e.shape} and {c.shape}")
    n = e.size
    ce, cq = _ci(energy_ci, n), _ci(quality_ci, n)
    ok = np.isfinite(e) & np.isfinite(c)
    # Bounds: a's pessimistic end (hi) against b's optimistic end (lo).
    e_hi, e_lo, c_hi, c_lo = e + ce, e - ce, c + cq, c - cq
    e_hi[~ok], c_hi[~ok] = np.inf, np.inf  # invalid points dominate nothing
    out = np.zeros(n, dtype=bool)
    for start in range(0, n, _BLOCK):
        j = slice(start, min(n, start + _BLOCK))
        le_e = e_hi[:, None] <= e_lo[None, j]
        le_c = c_hi[:, None] <= c_lo[None, j]
        strict = (e_hi[:, None] < e_lo[None, j]) | (c_hi[:, None] < c_lo[None, j])
        out[j] = np.any(le_e & le_c & strict, axis=0)
    return out & ok


def pareto_mask(
    energy: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[float],
    sense: str = "max",
    energy_ci: np.ndarray | Sequence[float] | None = None,
    quality_ci: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """True for each point on the front: finite, and not dominated (see `dominated_mask`)."""
    e = np.asarray(energy, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    dom = dominated_mask(e, q, sense, energy_ci, quality_ci)
    return np.isfinite(e) & np.isfinite(q) & ~dom


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
    knee: object  # index label of the knee (None for an empty front)
    hypervolume: float
    hypervolume_norm: float  # hypervolume / the box from the ideal point to the reference (0…1)
    ref_energy: float
    ref_quality: float

    @property
    def label(self) -> str:
        return front_label(self.metric, self.sense, self.group)


def front_label(metric: str, sense: str, group: Sequence[tuple[str, object]] = ()) -> str:
    """The `front` column of fronts.csv, e.g. ``clap_mean:max | dataset=audiocaps``."""
    base = f"{metric}:{sense}"
    if not group:
        return base
    return base + " | " + ", ".join(f"{k}={fmt(v, na='NA')}" for k, v in group)


def compute_fronts(
    configs: pd.DataFrame,
    energy_col: str,
    qualities: Sequence[tuple[str, str]],
    group_cols: Sequence[str] = (),
    *,
    energy_ci_col: str | None = None,
    quality_ci_cols: dict[str, str] | None = None,
) -> list[Front]:
    """Fronts of `energy_col` against each (quality column, "max"|"min"), within each group.

    `configs` has one row per configuration (means); CI columns, when given, hold 95 % half-widths.
    Groups are sorted by their values, so the result does not depend on row order.
    """
    quality_ci_cols = quality_ci_cols or {}
    out: list[Front] = []
    groups = [((), configs)] if not group_cols else _sorted_groups(configs, list(group_cols))
    for metric, sense in qualities:
        if sense not in SENSES:
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
            mask = pareto_mask(e, q, sense, ce, cq)
            idx = np.flatnonzero(mask)
            idx = idx[np.lexsort((_cost(q[idx], sense), e[idx]))]
            labels = sub.index[idx].tolist()  # python scalars, not numpy ones
            knee = labels[knee_index(e[idx], q[idx], sense)] if idx.size else None
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
                    knee=knee,
                    hypervolume=hv,
                    hypervolume_norm=float(hv / ideal_box) if ideal_box > 0 else math.nan,
                    ref_energy=ref[0],
                    ref_quality=ref[1],
                )
            )
    return out


def fronts_summary(
    fronts: Sequence[Front], configs: pd.DataFrame, label_cols: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per front: its size, dominance rule, hypervolume with its reference point, and knee."""
    rows = []
    for f in fronts:
        knee = "" if f.knee is None else describe(configs.loc[f.knee], label_cols)
        rows.append(
            {
                "front": f.label,
                "dominance": f.dominance,
                "configs": f.n_points,
                "on_front": len(f.members),
                "hypervolume": f.hypervolume,
                "hv_norm": f.hypervolume_norm,
                "hv_ref_energy": f.ref_energy,
                "hv_ref_quality": f.ref_quality,
                "knee": knee,
            }
        )
    return pd.DataFrame(rows)


def describe(row: pd.Series, label_cols: Sequence[str]) -> str:
    """A configuration in words: ``model=tango steps=50``."""
    return " ".join(f"{c}={fmt(row[c], na='NA')}" for c in label_cols if c in row.index)


def _col(df: pd.DataFrame, name: str | None) -> np.ndarray | None:
    if name is None or name not in df.columns:
        return None
    return df[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _sorted_groups(df: pd.DataFrame, cols: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    groups = [
        ((k if isinstance(k, tuple) else (k,)), sub) for k, sub in df.groupby(cols, dropna=False, sort=False)
    ]
    return sorted(groups, key=lambda g: tuple(sort_key(v) for v in g[0]))
