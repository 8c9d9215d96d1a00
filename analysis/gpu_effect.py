"""The GPU effect: how much a configuration's measured energy depends on the GPU (and host) it ran on.

At batch 1 diffusion pipelines are launch-bound, so the same configuration costs more on a GPU whose
host CPU is slower: when every configuration of a model runs on one GPU, a model comparison becomes a
GPU comparison. With `placement: spread` each configuration's repeats run on several GPUs, and then:

* each window's **ratio** is its energy over its configuration's GPU-balanced mean (each GPU weighted
  equally, however many windows it measured); a GPU's `energy_ratio` is the mean of its windows' ratios
  over every configuration measured on ≥ 2 GPUs, with the t-based 95 % CI of that mean;
* a GPU whose ratio is more than `WARN_FRACTION` off 1 beyond its CI gets a warning: its figures, and
  those of any configuration measured on it alone, carry that bias;
* `balanced_mean_ci` gives the configuration means the fronts and fits use, so a configuration that ran
  more repeats on one GPU than on another is not pulled towards that GPU.

Pure functions on the results table (pandas); nothing here imports Ray or torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from t2a_ray.analysis.stats import mean_ci, t_quantile

WARN_FRACTION = 0.02
GPU_COL = "gpu_uuid"
CONFIG_COL = "trial_id"
COLUMNS = (
    GPU_COL,
    "gpu_name",
    "node",
    "configurations",
    "windows",
    "energy_ratio",
    "energy_ratio_ci95",
    "warning",
)


def balanced_mean_ci(values: Sequence[float] | pd.Series, gpus: Sequence[object] | pd.Series):
    """(mean, 95 % CI half-width, n) of `values` with each GPU in `gpus` weighted equally.

    The mean is the mean of the GPUs' means. Its CI uses the pooled within-GPU variance (n − k degrees
    of freedom); where every GPU has one value, the spread of the GPU means. One GPU: the plain mean.
    """
    df = pd.DataFrame({"v": pd.to_numeric(pd.Series(list(values)), errors="coerce"), "g": list(gpus)})
    df = df[np.isfinite(df["v"])]
    groups = df.groupby("g", dropna=False, sort=True)["v"]
    k, n = groups.ngroups, len(df)
    if k <= 1:
        return mean_ci(df["v"])
    means, counts = groups.mean(), groups.count()
    mean = float(means.mean())
    dof = n - k
    if dof < 1:
        return mean_ci(means.to_numpy())[0:2] + (n,)
    pooled_var = float(((df["v"] - df["g"].map(means)) ** 2).sum()) / dof
    se = math.sqrt(pooled_var * float((1.0 / counts).sum())) / k
    return mean, t_quantile(dof) * se, n


def config_mean_ci(rows: pd.DataFrame, col: str, gpu_col: str = GPU_COL) -> tuple[float, float, int]:
    """(mean, 95 % CI half-width, n) of `col` over one configuration's `rows`: each GPU weighted equally
    where every row names its GPU (`balanced_mean_ci`), else the plain mean (`stats.mean_ci`).
    `grouped_mean_ci` computes the same for many configurations at once."""
    if gpu_col in rows.columns and rows[gpu_col].notna().all():
        return balanced_mean_ci(rows[col], rows[gpu_col])
    return mean_ci(pd.to_numeric(rows[col], errors="coerce").astype("float64"))


def grouped_mean_ci(df: pd.DataFrame, col: str, by: str, gpu_col: str = GPU_COL) -> pd.DataFrame:
    """`config_mean_ci` of `col` for every value of `by` at once (vectorised: thousands of
    configurations in well under a second): columns ``mean``, ``ci95``, ``n``, indexed by `by`'s values
    with a finite value."""
    v = pd.to_numeric(df[col], errors="coerce").astype("float64")
    named = df[gpu_col].notna() if gpu_col in df.columns else pd.Series(False, index=df.index)
    all_named = named.groupby(df[by], sort=False).all()
    ok = np.isfinite(v)
    d = pd.DataFrame(
        {"k": df.loc[ok, by], "g": df.loc[ok, gpu_col] if gpu_col in df.columns else 0, "v": v[ok]}
    )
    plain = d.groupby("k", sort=False)["v"].agg(["mean", "std", "count"])
    d["dev2"] = (d["v"] - d.groupby(["k", "g"], dropna=False, sort=False)["v"].transform("mean")) ** 2
    per_gpu = d.groupby(["k", "g"], dropna=False, sort=False).agg(
        mean=("v", "mean"), count=("v", "size"), ss=("dev2", "sum")
    )
    per_gpu["inv"] = 1.0 / per_gpu["count"]
    levels = per_gpu.groupby(level=0, sort=False)
    gpus = levels.agg(k=("mean", "size"), mean=("mean", "mean"), spread=("mean", "std"), ss=("ss", "sum"))
    gpus["inv"] = levels["inv"].sum()
    out = pd.DataFrame(index=plain.index)
    n = plain["count"]
    t = _t_of(n - 1)
    out["mean"], out["ci95"], out["n"] = plain["mean"], t * plain["std"] / np.sqrt(n), n.astype(int)
    balanced = (gpus["k"] > 1) & all_named.reindex(gpus.index).astype(bool)
    b = gpus[balanced]
    dof = n.reindex(b.index) - b["k"]
    pooled = _t_of(dof) * np.sqrt(b["ss"] / dof.where(dof >= 1) * b["inv"]) / b["k"]
    spread = _t_of(b["k"] - 1) * b["spread"] / np.sqrt(b["k"])  # every GPU one value
    out.loc[b.index, "mean"] = b["mean"]
    out.loc[b.index, "ci95"] = pooled.where(dof >= 1, spread)
    return out


def _t_of(dof: pd.Series) -> pd.Series:
    """`t_quantile` of each value of `dof` (NaN where dof < 1), computed once per distinct value."""
    q = {d: t_quantile(int(d)) for d in pd.unique(dof.dropna())}
    return dof.map(q).astype("float64")


def gpu_effect(
    rows: pd.DataFrame, energy_col: str, config_col: str = CONFIG_COL, gpu_col: str = GPU_COL
) -> pd.DataFrame:
    """One row per GPU that measured a configuration also measured on another GPU (see the module
    docstring); empty when no configuration was measured on two GPUs."""
    if gpu_col not in rows.columns or config_col not in rows.columns or energy_col not in rows.columns:
        return pd.DataFrame(columns=list(COLUMNS))
    df = rows[[c for c in {config_col, gpu_col, energy_col, "gpu_name", "node"} if c in rows.columns]].copy()
    df[energy_col] = pd.to_numeric(df[energy_col], errors="coerce")
    df = df[df[gpu_col].notna() & np.isfinite(df[energy_col])]
    shared = df.groupby(config_col)[gpu_col].nunique()
    df = df[df[config_col].isin(shared[shared >= 2].index)]
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    centre = {cfg: balanced_mean_ci(sub[energy_col], sub[gpu_col])[0] for cfg, sub in df.groupby(config_col)}
    df["_ratio"] = df[energy_col] / df[config_col].map(centre)
    out = []
    for gpu, sub in df.groupby(gpu_col, sort=True):
        ratio, ci, n = mean_ci(sub["_ratio"])
        out.append(
            {
                gpu_col: gpu,
                "gpu_name": sub["gpu_name"].iloc[0] if "gpu_name" in sub.columns else None,
                "node": sub["node"].iloc[0] if "node" in sub.columns else None,
                "configurations": int(sub[config_col].nunique()),
                "windows": n,
                "energy_ratio": ratio,
                "energy_ratio_ci95": ci,
                "warning": bool(np.isfinite(ci) and abs(ratio - 1.0) - ci > WARN_FRACTION),
            }
        )
    return pd.DataFrame(out, columns=list(COLUMNS))


def gpu_warnings(effect: pd.DataFrame) -> list[str]:
    """One line per GPU flagged by `gpu_effect`, naming it and its ratio with the CI."""
    return [
        f"GPU {r[GPU_COL]} ({r['gpu_name'] or '?'} on {r['node'] or '?'}) measures "
        f"{r['energy_ratio'] - 1:+.1%} ± {r['energy_ratio_ci95']:.1%} against the same configurations "
        f"on the other GPUs (more than {WARN_FRACTION:.0%} off beyond its 95 % CI): a configuration "
        "measured on it alone carries that bias"
        for _, r in effect.iterrows()
        if r["warning"]
    ]


def worker_table(
    gpus: Sequence[dict] | None, workers: Sequence[dict] | None, plan: dict | None = None
) -> pd.DataFrame:
    """One row per worker of a run's latest attempt, from its logs: where it ran (host, GPU), its
    reference workload (J and s per call of the fixed matmul and launch-bound work) and idle power, and
    what it did — loads, warm-ups, busy time, time in windows, the idle gaps between units — beside the
    time the plan predicted for it."""
    by_worker: dict[int, dict] = {}
    for g in gpus or []:
        by_worker.setdefault(g.get("worker"), {}).update(
            {k: g.get(k) for k in ("host", "host_id", "cpu_model", "gpu_name", "gpu_uuid", "idle_power_w")}
        )
        by_worker[g.get("worker")].update({k: v for k, v in g.items() if k.startswith("reference_")})
    for s in workers or []:
        gaps = s.get("gaps_s") or []
        by_worker.setdefault(s.get("worker"), {}).update(
            {
                "loads": sum((s.get("loads") or {}).values()) if "loads" in s else None,
                "warmups": s.get("warmups"),
                "busy_s": s.get("busy_s"),
                "window_s": s.get("window_s"),
                "gaps": len(gaps),
                "gaps_s": float(sum(gaps)),
                "longest_gap_s": max(gaps, default=None),
                "error": s.get("error"),
            }
        )
    for w in (plan or {}).get("workers", []):
        by_worker.setdefault(w.get("worker"), {})["predicted_s"] = w.get("predicted_s")
    rows = [{"worker": k, **v} for k, v in sorted(by_worker.items(), key=lambda kv: str(kv[0]))]
    table = pd.DataFrame(rows)
    return table.drop(columns=[c for c in table.columns if table[c].isna().all()]) if rows else table
