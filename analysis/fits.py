"""How energy scales with the generation parameters: straight-line fits and efficiency tables.

Every fit is done per model *and* per value of every other parameter that varies in the table (a
steps fit over a table that also sweeps batch size is one fit per batch size): a slope in J/step only
means something with the rest held fixed. Fits use the measured windows themselves, not their means, so
the slope's 95 % CI (t with n − 2 degrees of freedom) reflects the repeat noise.

Units: the energy column's (J for t2a-ray results).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from t2a_ray.analysis.stats import mean_ci, t_quantile
from t2a_ray.schema import PHASE_COLUMNS, PHASES


def fit_line(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]) -> dict[str, float]:
    """Least-squares line y = slope·x + intercept over finite pairs: n, slope, slope_ci95, intercept, r2.

    NaN where it cannot be had (fewer than 2 distinct x; R² when y is constant; CI with n < 3).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    nan = {"n": n, "slope": math.nan, "slope_ci95": math.nan, "intercept": math.nan, "r2": math.nan}
    if n < 2 or np.unique(x).size < 2:
        return nan
    xm, ym = x.mean(), y.mean()
    sxx = float(np.sum((x - xm) ** 2))
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    intercept = float(ym - slope * xm)
    resid = y - (slope * x + intercept)
    ss_res, ss_tot = float(np.sum(resid**2)), float(np.sum((y - ym) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    ci = t_quantile(n - 2) * math.sqrt(ss_res / (n - 2) / sxx) if n > 2 else math.nan
    return {"n": n, "slope": slope, "slope_ci95": ci, "intercept": intercept, "r2": r2}


def held_fixed(df: pd.DataFrame, axis: str, config_cols: Sequence[str], by: Sequence[str]) -> list[str]:
    """The configuration columns to hold fixed when varying `axis`: one series per value of each.

    A column counts when it varies *within* a value of (`by`, `axis`) — an independent grid axis such as
    batch size. A column that the axis determines (a label of the steps, a per-configuration id or
    seed) does not, or it would split every series into single points.
    """
    by = [c for c in by if c in df.columns]
    out = []
    for c in config_cols:
        if c == axis or c in by or c not in df.columns or c == "trial_id":
            continue
        if df.groupby(by + [axis], dropna=False)[c].nunique(dropna=False).max() > 1:
            out.append(c)
    return out


def energy_vs_steps(
    df: pd.DataFrame,
    energy_col: str,
    by: Sequence[str] = ("model",),
    config_cols: Sequence[str] = (),
    steps_col: str = "steps",
) -> pd.DataFrame:
    """Energy vs denoising steps per series: slope (J/step) with its 95 % CI, intercept (J), R², n."""
    keys = _series_keys(df, steps_col, by, config_cols)
    rows = []
    for key, sub in _groups(df, keys):
        if sub[steps_col].nunique() < 2:
            continue
        f = fit_line(sub[steps_col], sub[energy_col])
        rows.append(
            key
            | {
                "n": f["n"],
                "slope_j_per_step": f["slope"],
                "slope_ci95_j_per_step": f["slope_ci95"],
                "intercept_j": f["intercept"],
                "r2": f["r2"],
            }
        )
    return pd.DataFrame(rows)


def energy_per_audio_s_vs_duration(
    df: pd.DataFrame,
    y_col: str,
    by: Sequence[str] = ("model",),
    config_cols: Sequence[str] = (),
    duration_col: str = "duration_s",
) -> pd.DataFrame:
    """Energy per second of audio vs clip duration per series: slope (J/audio-s per s), intercept, R².

    A negative slope means longer clips amortise fixed costs (text encoder, model launch).
    """
    keys = _series_keys(df, duration_col, by, config_cols)
    rows = []
    for key, sub in _groups(df, keys):
        if sub[duration_col].nunique() < 2:
            continue
        f = fit_line(sub[duration_col], sub[y_col])
        rows.append(
            key
            | {
                "n": f["n"],
                "slope_j_per_audio_s_per_s": f["slope"],
                "slope_ci95": f["slope_ci95"],
                "intercept_j_per_audio_s": f["intercept"],
                "r2": f["r2"],
            }
        )
    return pd.DataFrame(rows)


def energy_vs_batch(
    df: pd.DataFrame,
    energy_col: str,
    by: Sequence[str] = ("model",),
    config_cols: Sequence[str] = (),
    batch_col: str = "batch_size",
) -> pd.DataFrame:
    """Per-waveform energy per batch size, per series: mean, 95 % CI, n, and the ratio to the series'
    smallest batch (below 1: batching saves energy per waveform)."""
    keys = _series_keys(df, batch_col, by, config_cols)
    rows = []
    for key, sub in _groups(df, keys):
        if sub[batch_col].nunique() < 2:
            continue
        base = None
        for b, part in sorted(sub.groupby(batch_col), key=lambda kv: kv[0]):
            mean, ci, n = mean_ci(part[energy_col])
            base = mean if base is None else base
            rows.append(
                key
                | {
                    batch_col: b,
                    "n": n,
                    f"{energy_col}_mean": mean,
                    f"{energy_col}_ci95": ci,
                    "vs_smallest_batch": mean / base if base else math.nan,
                }
            )
    return pd.DataFrame(rows)


def phase_shares(
    df: pd.DataFrame, by: Sequence[str] = ("model",), total_col: str | None = None
) -> pd.DataFrame:
    """Share of each phase (text_encoder, denoise, decode, vocoder) in the energy of the phases measured,
    per group, summed over windows; with `total_col` (e.g. gpu_energy_j) also the share of the total
    that no phase accounts for (`unattributed_share`). A phase a model lacks (no vocoder: null in every
    window) has a null share, never 0."""
    present = [c for c in PHASE_COLUMNS if c in df.columns]
    rows = []
    for key, sub in _groups(df, [c for c in by if c in df.columns]):
        phase = sub[present].apply(pd.to_numeric, errors="coerce")
        complete = phase.notna().any(axis=1)
        if not complete.any():
            continue
        sums = phase[complete].sum(min_count=1)  # NaN for a phase null in every window
        total_phases = float(sums.sum())
        if total_phases <= 0:
            continue
        row = key | {"n": int(complete.sum())}
        for p, c in zip(PHASES, PHASE_COLUMNS, strict=True):
            share = float(sums[c]) / total_phases if c in sums.index else math.nan
            row[f"{p}_share"] = None if math.isnan(share) else share
        if total_col is not None and total_col in sub.columns:
            total = float(pd.to_numeric(sub.loc[complete, total_col], errors="coerce").sum())
            rest = 1.0 - total_phases / total if total > 0 else math.nan
            row["unattributed_share"] = 0.0 if rest < 1e-9 else rest  # rounding, not energy
        rows.append(row)
    return pd.DataFrame(rows)


def repeat_spread(
    df: pd.DataFrame, energy_col: str, by: Sequence[str] = ("model",), config_col: str = "_config"
) -> pd.DataFrame:
    """How much repeats of one configuration scatter, per group: the median and largest coefficient of
    variation (sample std / mean) of `energy_col` over the configurations with ≥ 2 repeats, beside the
    median CV of the window's duration — energy scattering no more than time is the work's own
    variation, not the meter's error."""
    rows = []
    for key, sub in _groups(df, [c for c in by if c in df.columns]):
        energy_cv = _cv_per_config(sub, energy_col, config_col)
        if energy_cv.empty:
            continue
        row = key | {
            "configs": len(energy_cv),
            "energy_cv_median": float(energy_cv.median()),
            "energy_cv_max": float(energy_cv.max()),
        }
        if "window_s" in sub.columns:
            row["window_s_cv_median"] = float(_cv_per_config(sub, "window_s", config_col).median())
        rows.append(row)
    return pd.DataFrame(rows)


def _cv_per_config(df: pd.DataFrame, col: str, config_col: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    grouped = values.groupby(df[config_col])
    mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
    return (std / mean)[(n >= 2) & (mean > 0)]


def per_gpu(df: pd.DataFrame) -> pd.DataFrame:
    """One row per GPU that measured (by UUID): its name, rows, and the idle power its worker measured
    before its first trial (one value per worker process; several where a GPU served several runs)."""
    if "gpu_uuid" not in df.columns or df["gpu_uuid"].isna().all():
        return pd.DataFrame()
    rows = []
    for uuid, sub in df[df["gpu_uuid"].notna()].groupby("gpu_uuid", sort=True):
        idle_w = sub["idle_power_w"] if "idle_power_w" in sub.columns else pd.Series(dtype=float)
        idle = pd.to_numeric(idle_w, errors="coerce").dropna().unique()
        rows.append(
            {
                "gpu_uuid": uuid,
                "gpu_name": sub["gpu_name"].iloc[0] if "gpu_name" in sub.columns else None,
                "rows": len(sub),
                "idle_power_w": ", ".join(f"{w:.1f}" for w in sorted(idle)) if len(idle) else None,
            }
        )
    return pd.DataFrame(rows)


def _series_keys(df: pd.DataFrame, axis: str, by: Sequence[str], config_cols: Sequence[str]) -> list[str]:
    by = [c for c in by if c in df.columns]
    return by + (held_fixed(df, axis, config_cols, by) if axis in df.columns else [])


def _groups(df: pd.DataFrame, keys: list[str]):
    if not keys:
        yield {}, df
        return
    for k, sub in df.groupby(keys, dropna=False, sort=True):
        k = k if isinstance(k, tuple) else (k,)
        yield dict(zip(keys, k, strict=True)), sub
