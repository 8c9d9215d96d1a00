"""What a runtime setting (compile mode, attention backend) costs once and saves per waveform.

Pure functions over the results table (one row per window) and the setup table (`logs/setup/`, one row
per setup generation: the first call of a runtime at a shape on a worker, per prompt, outside the
windows; a later unit of that shape on that worker, at any step count, finds it compiled):

* `setup_costs`: the generations that compiled something, with their overhead — the setup
  generation's energy and time minus one steady generation of the same trial (the mean of its windows).
* `break_even`: per compiled configuration, the waveforms after which its compile overhead is paid
  back by its saving per waveform against the eager configuration that differs only in the runtime.
* `equivalence`: per configuration, how far its waveform is from the eager run's (same seed), flagged
  below `EQUIVALENT_MIN_SNR_DB`.
* `launch_boundness`: per configuration, how busy the GPU was and its power over idle, read out as
  launch-bound or compute-bound.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from t2a_ray.adapters.runtime import EAGER, EQUIVALENT_MIN_SNR_DB
from t2a_ray.analysis.stats import mean_ci, t_quantile
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import COLUMN_ROLES, CONFIG, SETUP_AXES

# A window whose GPU ran kernels less than this share of the time waited on the host between them.
LAUNCH_BOUND_BELOW_BUSY = 0.9
_RUNTIME = list(EAGER)
# What a compilation depends on: the setup's axes but the step count, which only repeats the compiled
# denoiser (the worker sets a shape up once for every step count).
SETUP_SHAPE = [c for c in SETUP_AXES if c != "steps"]


def read_setup(run_dir: str | Path) -> pd.DataFrame | None:
    """The run's setup table (every trial's `logs/setup/` shard), or None when no runtime needed one."""
    paths = sorted(RunFolder(run_dir).setup_dir.glob("*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True) if paths else None


def config_columns(results: pd.DataFrame) -> list[str]:
    """What identifies a configuration: model, weights, dtype and every grid axis (the schema's role)."""
    return [c for c in results.columns if COLUMN_ROLES.get(c, CONFIG) == CONFIG]


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "ok"]


def _per_generation(results: pd.DataFrame) -> pd.DataFrame:
    """Each ok window's device energy (J) and latency (s) per generation, with its trial."""
    ok = _ok(results)
    energy = ok["gpu_energy_j"].where(ok["gpu_energy_j"].notna(), ok["cpu_energy_j"])
    return pd.DataFrame(
        {
            "trial_id": ok["trial_id"],
            "generation_j": energy / ok["generations_in_window"],
            "latency_s": ok["latency_s"],
        }
    )


def setup_costs(setup: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The setup generations that compiled graphs, with `overhead_j`/`overhead_s`: what they cost
    beyond one steady generation of their trial (null when the trial has no ok window)."""
    compiled = setup[setup["graphs_compiled"] > 0].copy()
    steady = _per_generation(results).groupby("trial_id")[["generation_j", "latency_s"]].mean()
    compiled = compiled.join(steady, on="trial_id")
    compiled["overhead_j"] = compiled["setup_energy_j"] - compiled["generation_j"]
    compiled["overhead_s"] = compiled["setup_s"] - compiled["latency_s"]
    return compiled.drop(columns=["generation_j", "latency_s"]).reset_index(drop=True)


def difference_ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean(a) − mean(b), Welch's t-based 95 % CI half-width); the half-width is NaN with < 2 each."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    diff = float(a.mean() - b.mean()) if a.size and b.size else math.nan
    if a.size < 2 or b.size < 2:
        return diff, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return diff, 0.0
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return diff, t_quantile(max(1, int(dof))) * math.sqrt(va + vb)


def break_even(results: pd.DataFrame, costs: pd.DataFrame, energy_col: str = "energy_per_waveform_j"):
    """Per compiled configuration: its saving per waveform against its eager twin (95 % CI, Welch)
    and the waveforms after which the compile overhead is paid back, with the CI that the saving's
    CI gives (the overhead is one measurement per shape and worker, taken as exact; the mean over
    workers where several compiled it). A shape is every setup axis but the step count: the worker
    compiles a shape once for every step count (`SETUP_SHAPE`). Never paid back:
    `break_even_waveforms` is inf."""
    ok = _ok(results)
    cols = config_columns(ok)
    others = [c for c in cols if c not in _RUNTIME]
    shape_cols = ["model", "weights", "dtype", *SETUP_SHAPE]
    overhead = costs.groupby(shape_cols, dropna=False)["overhead_j"].mean()
    eager = _where(ok, EAGER)
    out = []
    compiled = ok[ok["compile"].notna() & (ok["compile"] != EAGER["compile"])]
    for key, rows in compiled.groupby(cols, dropna=False):
        config = dict(zip(cols, key, strict=True))
        twin = _where(eager, {c: config[c] for c in others})
        shape = tuple(config[c] for c in shape_cols)
        over = float(overhead.get(shape, math.nan))
        saving, half = difference_ci(twin[energy_col], rows[energy_col])
        low, high = saving - half, saving + half
        out.append(
            {
                **config,
                "eager_" + energy_col: float(twin[energy_col].mean()) if len(twin) else math.nan,
                energy_col: float(rows[energy_col].mean()),
                "saving_per_waveform_j": saving,
                "saving_per_waveform_j_ci95": half,
                "overhead_j": over,
                "break_even_waveforms": _paid_after(over, saving),
                "break_even_waveforms_low": _paid_after(over, high),
                "break_even_waveforms_high": _paid_after(over, low),
            }
        )
    return pd.DataFrame(out)


def _where(df: pd.DataFrame, values: dict) -> pd.DataFrame:
    """The rows of `df` with these column values (null matches null: an axis a model does not have)."""
    keep = pd.Series(True, index=df.index)
    for col, value in values.items():
        keep &= df[col].isna() if pd.isna(value) else df[col] == value
    return df[keep]


def _paid_after(overhead_j: float, saving_j: float) -> float:
    if not (math.isfinite(overhead_j) and math.isfinite(saving_j)):
        return math.nan
    if overhead_j <= 0:
        return 0.0
    return overhead_j / saving_j if saving_j > 0 else math.inf


def equivalence(results: pd.DataFrame) -> pd.DataFrame:
    """Per configuration compared with its eager run: relative L2 error, SNR (dB), `changes_audio`
    when the SNR is below its dtype's `EQUIVALENT_MIN_SNR_DB`."""
    ok = _ok(results)
    if "output_snr_db" not in ok:
        return pd.DataFrame()
    compared = ok[ok["output_snr_db"].notna()]
    cols = config_columns(ok)
    out = compared.groupby(cols, dropna=False)[["output_rel_l2_error", "output_snr_db"]].min().reset_index()
    out["changes_audio"] = out["output_snr_db"] < out["dtype"].map(EQUIVALENT_MIN_SNR_DB)
    return out


def launch_boundness(results: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: mean GPU busy fraction (with its 95 % CI) and mean power over idle; read out
    `launch-bound` below `LAUNCH_BOUND_BELOW_BUSY`, else `compute-bound` (null without a busy figure)."""
    ok = _ok(results)
    cols = config_columns(ok)
    out = []
    for key, rows in ok.groupby(cols, dropna=False):
        busy = rows["gpu_busy_fraction"] if "gpu_busy_fraction" in rows else pd.Series(dtype=float)
        mean, half, n = mean_ci(busy.astype(float))
        over_idle = (rows["avg_power_w"] / rows["idle_power_w"]).astype(float)
        out.append(
            {
                **dict(zip(cols, key, strict=True)),
                "gpu_busy_fraction": mean if n else None,
                "gpu_busy_fraction_ci95": half if n else None,
                "power_over_idle": float(over_idle.mean()) if over_idle.notna().any() else None,
                "bound": None
                if not n
                else ("launch-bound" if mean < LAUNCH_BOUND_BELOW_BUSY else "compute-bound"),
            }
        )
    return pd.DataFrame(out)


# Each table's heading in the report: title, and the detail the printed tables add.
TITLES = {
    "runtime_setup": (
        "Compile and capture cost",
        " (setup generations that compiled, outside the windows; overhead: beyond one steady generation)",
    ),
    "break_even": (
        "Break-even of compiled runtimes",
        " (waveforms after which the compile overhead is paid back; 95 % CI from the saving's)",
    ),
    "equivalence": (
        "Output against the eager run",
        " (same configuration and seed; changes_audio below "
        + ", ".join(f"{db:g} dB SNR in {dtype}" for dtype, db in EQUIVALENT_MIN_SNR_DB.items())
        + ")",
    ),
    "launch_boundness": (
        "Launch-bound or compute-bound",
        f" (share of the window the GPU ran kernels, NVML; launch-bound below {LAUNCH_BOUND_BELOW_BUSY:g})",
    ),
}


def runtime_tables(results: pd.DataFrame, setup: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The report's runtime tables that this run has data for, keyed as in `TITLES`; each shows the
    model and the configuration columns that vary in the run."""
    keep = [c for c in config_columns(results) if c == "model" or results[c].nunique(dropna=False) > 1]
    tables: dict[str, pd.DataFrame] = {}
    if setup is not None and not setup.empty:
        costs = setup_costs(setup, results)
        shape = ["model", *(c for c in SETUP_AXES if c in keep)]
        tables["runtime_setup"] = costs[
            [*shape, "gpu_uuid", "graphs_compiled", "setup_s", "setup_energy_j", "overhead_s", "overhead_j"]
        ]
        even = break_even(results, costs)
        if not even.empty:
            tables["break_even"] = even[
                [*keep, *(c for c in even.columns if c not in config_columns(results))]
            ]
    if "output_snr_db" in results and results["output_snr_db"].notna().any():
        eq = equivalence(results)
        tables["equivalence"] = eq[[*keep, "output_rel_l2_error", "output_snr_db", "changes_audio"]]
    if "gpu_busy_fraction" in results and results["gpu_busy_fraction"].notna().any():
        bound = launch_boundness(results)
        tables["launch_boundness"] = bound[
            [*keep, *(c for c in bound.columns if c not in config_columns(results))]
        ]
    return tables
