"""What a runtime setting (compile mode, attention backend, precision, step cache) costs once and saves
per waveform.

Pure functions over the results table (one row per window) and the setup table (`logs/setup/`, one row
per setup generation: the first call of a runtime at a trial's shapes, outside the windows):

* `setup_costs`: the generations that compiled something or quantised the denoiser, with their
  overhead — the setup generation's energy and time minus one steady generation of the same trial (the
  mean of its windows).
* `break_even`: per configuration of a runtime other than eager, the waveforms after which its setup
  overhead is paid back by its saving per waveform against the eager configuration that differs only in
  the runtime.
* `equivalence`: per configuration, how far its waveform is from the eager run's (same seed), flagged
  below `EQUIVALENT_MIN_SNR_DB`.
* `launch_boundness`: per configuration, how busy the GPU was and its power over idle, read out as
  launch-bound or compute-bound.
* `runtime_table`: what a reading of a runtime sweep quotes, one row per configuration of a runtime
  other than eager (report/runtime.csv), from the four above.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from t2a_ray.adapters.runtime_axes import EAGER, EQUIVALENT_MIN_SNR_DB, shape_params
from t2a_ray.analysis.energy_basis import GROSS, NET, estimate_label
from t2a_ray.analysis.stats import mean_ci, t_quantile
from t2a_ray.analysis.values import fmt, sort_key
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import COLUMN_ROLES, CONFIG, SETUP_AXES, trial_status

# A window whose GPU ran kernels less than this share of the time waited on the host between them.
LAUNCH_BOUND_BELOW_BUSY = 0.9
_RUNTIME = list(EAGER)
ENERGY_COL = "energy_per_waveform_j"
# The configuration column that records what was loaded: null in the rows of a trial that never loaded.
_LOADED = "model_revision"
_OVERHEAD = ["overhead_j", "overhead_s"]


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
    """The setup generations that compiled graphs or quantised the denoiser, with `overhead_j`/
    `overhead_s`: what they cost beyond one steady generation of their trial (null when the trial has
    no ok window). A setup table from before quantisation existed has no `denoisers_quantised`."""
    work = setup["graphs_compiled"] > 0
    if "denoisers_quantised" in setup:
        work |= setup["denoisers_quantised"].fillna(0) > 0
    compiled = setup[work].copy()
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


def break_even(results: pd.DataFrame, costs: pd.DataFrame, energy_col: str = ENERGY_COL) -> pd.DataFrame:
    """Per configuration of a runtime other than eager: its saving per waveform against its eager twin
    (95 % CI, Welch) and the waveforms after which the setup overhead (compiling, quantising) is paid
    back, with the CI that the saving's CI gives (the overhead is one measurement per shape and worker,
    taken as exact; the mean over workers where several compiled it). Never paid back:
    `break_even_waveforms` is inf.

    The overhead is that of the setups of the configuration's own trials (`overhead_from` ``own``);
    where they compiled nothing, that of the configurations differing from it only in `steps` that did
    compile (`overhead_from` names their steps): the same shape (`shape_params`), so those reused the
    graphs. Null where no such setup was measured."""
    ok = _ok(results)
    cols = config_columns(ok)
    others = [c for c in cols if c not in _RUNTIME]
    overheads = _config_overheads(ok, costs, cols)
    eager = ok[_eager_rows(ok)]
    out = []
    for key, rows in ok[~_eager_rows(ok)].groupby(cols, dropna=False):
        config = dict(zip(cols, key, strict=True))
        twin = _where(eager, {c: config[c] for c in others})
        over_j, over_s, source = _overhead(overheads, config)
        saving, half = difference_ci(twin[energy_col], rows[energy_col])
        low, high = saving - half, saving + half
        out.append(
            {
                **config,
                "eager_" + energy_col: float(twin[energy_col].mean()) if len(twin) else math.nan,
                energy_col: float(rows[energy_col].mean()),
                "saving_per_waveform_j": saving,
                "saving_per_waveform_j_ci95": half,
                "overhead_s": over_s,
                "overhead_j": over_j,
                "overhead_from": source,
                "break_even_waveforms": _paid_after(over_j, saving),
                "break_even_waveforms_low": _paid_after(over_j, high),
                "break_even_waveforms_high": _paid_after(over_j, low),
            }
        )
    return pd.DataFrame(out)


def _config_overheads(ok: pd.DataFrame, costs: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Per configuration (`cols`) whose trials' setups did work: their mean overhead. Joined through
    `trial_id`, since the setup table records only some parameters (not guidance, a scheduler, …) and
    two setups that differ in another must not be merged."""
    trials = ok[[*cols, "trial_id"]].drop_duplicates("trial_id")
    joined = costs[["trial_id", *_OVERHEAD]].merge(trials, on="trial_id")
    return joined.groupby(cols, dropna=False)[_OVERHEAD].mean().reset_index()


def _overhead(overheads: pd.DataFrame, config: dict) -> tuple[float, float, str | None]:
    """(overhead J, overhead s, where it was measured) of `config` from `_config_overheads`: see
    `break_even`."""
    own = _where(overheads, config)
    if len(own):
        return float(own["overhead_j"].iloc[0]), float(own["overhead_s"].iloc[0]), "own"
    reused = _where(overheads, shape_params(config))
    if reused.empty:
        return math.nan, math.nan, None
    steps = ", ".join(fmt(v) for v in sorted(reused["steps"].unique(), key=sort_key))
    return float(reused["overhead_j"].mean()), float(reused["overhead_s"].mean()), f"steps={steps}"


def net_of_idle(rows: pd.DataFrame, energy_col: str = ENERGY_COL) -> pd.Series:
    """`energy_col` of each window net of the GPU's idle power: scaled by the window's
    `gpu_energy_net_j` over its `gpu_energy_j` (the per-waveform figures divide both alike). Null
    without a GPU's net energy (on the CPU)."""
    if "gpu_energy_net_j" not in rows or "gpu_energy_j" not in rows:
        return pd.Series(math.nan, index=rows.index, dtype=float)
    gross = pd.to_numeric(rows["gpu_energy_j"], errors="coerce").astype(float)
    net = pd.to_numeric(rows["gpu_energy_net_j"], errors="coerce").astype(float)
    return pd.to_numeric(rows[energy_col], errors="coerce").astype(float) * net / gross.where(gross > 0)


def _change(mine: pd.Series, twin: pd.Series) -> tuple[float, float]:
    """(change of the mean of `mine` from that of `twin`, in %; its 95 % CI, Welch, with the twin's mean
    taken as exact), null without a twin."""
    base = float(twin.mean()) if twin.notna().any() else math.nan
    diff, half = difference_ci(mine, twin)
    if not base or math.isnan(base):
        return math.nan, math.nan
    return 100 * diff / base, 100 * half / base


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
    """Per configuration compared with its eager run: the largest relative L2 error and lowest SNR (dB)
    of its compared windows, `changes_audio` when that SNR is below its dtype's `EQUIVALENT_MIN_SNR_DB`."""
    ok = _ok(results)
    if "output_snr_db" not in ok:
        return pd.DataFrame()
    compared = ok[ok["output_snr_db"].notna()]
    if compared.empty:  # no runtime ran beside an eager twin (or every one was infeasible)
        return pd.DataFrame()
    cols = config_columns(ok)
    worst = {"output_rel_l2_error": "max", "output_snr_db": "min"}
    out = compared.groupby(cols, dropna=False).agg(worst).reset_index()
    out["changes_audio"] = out["output_snr_db"] < out["dtype"].map(EQUIVALENT_MIN_SNR_DB)
    return out


def _setup_costs(setup: pd.DataFrame | None, results: pd.DataFrame) -> pd.DataFrame | None:
    return None if setup is None or setup.empty else setup_costs(setup, results)


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


# What `runtime_table` takes from `break_even`.
_SETUP_FIGURES = [
    "overhead_s",
    "overhead_j",
    "overhead_from",
    "break_even_waveforms",
    "break_even_waveforms_low",
    "break_even_waveforms_high",
]


def runtime_table(
    results: pd.DataFrame,
    setup: pd.DataFrame | None,
    energy_col: str = ENERGY_COL,
    *,
    costs: pd.DataFrame | None = None,
    bound: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per configuration whose runtime is not eager (report/runtime.csv), beside its eager
    twin (the same configuration run eagerly), from the functions above:

    * `status` (`schema.trial_status` of its windows) and `error`: a knob that could not run is a row;
    * `energy_estimate`: `energy_basis.estimate_label` of both configurations' windows ("" when measured);
    * the energy per waveform of each (mean, t-based 95 % CI) and `gross_change_pct`: their difference
      (`difference_ci`, Welch) over the eager mean, in %, with its CI (the eager mean taken as exact) —
      gross, idle power included, as `energy_col` is; and `net_change_pct` with its CI, the same of the
      energy net of idle (`net_of_idle`, null on the CPU), beside the net means;
    * the generation time per waveform of each (`latency_s` over `batch_size`, mean, s);
    * `output_rel_l2_error`, `output_snr_db` and `changes_audio` (`equivalence`: its worst window);
    * `gpu_busy_fraction` and `bound` of each (`launch_boundness`);
    * the setup overhead (compiling, quantising), where it was measured and the break-even
      (`break_even`; null without a setup table, or where the setup did neither: a step cache alone).

    Eager configurations appear only as twins; empty when no configuration ran another runtime.
    `costs` and `bound`: `setup_costs` and `launch_boundness` of these tables where the caller has them."""
    cols = config_columns(results)
    runs = results[~_eager_rows(results)]
    if runs.empty:
        return pd.DataFrame()
    costs = _setup_costs(setup, results) if costs is None else costs
    even = pd.DataFrame() if costs is None else break_even(results, costs, energy_col)
    same = equivalence(results)
    bound = launch_boundness(results) if bound is None else bound
    out = []
    for key, rows in runs.groupby(cols, dropna=False):
        config = dict(zip(cols, key, strict=True))
        eager = {**config, **{c: EAGER[c] for c in _RUNTIME if c in config}}
        if pd.isna(config.get(_LOADED)):  # a trial that failed before its model loaded
            eager.pop(_LOADED, None)
        twin = _where(_ok(results), eager)
        mine = _ok(rows)
        eager_mean, eager_half, _ = mean_ci(twin[energy_col])
        mean, half, _ = mean_ci(mine[energy_col])
        gross, gross_half = _change(mine[energy_col], twin[energy_col])
        net_mine, net_twin = net_of_idle(mine, energy_col), net_of_idle(twin, energy_col)
        net, net_half = _change(net_mine, net_twin)
        errors = rows["error"].dropna().astype(str).unique()
        out.append(
            {
                **config,
                "status": trial_status(rows["status"]),
                "error": "; ".join(errors) if len(errors) else None,
                "energy_estimate": estimate_label(pd.concat([twin, mine]), energy_col),
                f"eager_{energy_col}": eager_mean,
                f"eager_{energy_col}_ci95": eager_half,
                energy_col: mean,
                f"{energy_col}_ci95": half,
                "gross_change_pct": gross,
                "gross_change_pct_ci95": gross_half,
                f"eager_{_net(energy_col)}": mean_ci(net_twin)[0],
                _net(energy_col): mean_ci(net_mine)[0],
                "net_change_pct": net,
                "net_change_pct_ci95": net_half,
                "eager_time_per_waveform_s": _time_per_waveform_s(twin),
                "time_per_waveform_s": _time_per_waveform_s(mine),
                **_pick(same, config, ["output_rel_l2_error", "output_snr_db", "changes_audio"]),
                **_pick(bound, eager, ["gpu_busy_fraction", "bound"], prefix="eager_"),
                **_pick(bound, config, ["gpu_busy_fraction", "bound"]),
                **_pick(even, config, _SETUP_FIGURES),
            }
        )
    return pd.DataFrame(out)


def _net(energy_col: str) -> str:
    """The name of `energy_col` net of idle: ``energy_per_waveform_j`` → ``energy_per_waveform_net_j``."""
    return energy_col.removesuffix("_j") + "_net_j"


def _eager_rows(df: pd.DataFrame) -> pd.Series:
    """Rows run eagerly: each runtime axis at its default, or null (a model without the axis)."""
    eager = pd.Series(True, index=df.index)
    for col, default in EAGER.items():
        if col in df:
            eager &= df[col].isna() | (df[col] == default)
    return eager


def _time_per_waveform_s(rows: pd.DataFrame) -> float:
    """Mean generation time per waveform (s): each window's `latency_s` over its batch size."""
    if rows.empty or "batch_size" not in rows:
        return math.nan
    return float((rows["latency_s"] / rows["batch_size"]).astype(float).mean())


def _pick(table: pd.DataFrame, config: dict, columns: list[str], prefix: str = "") -> dict:
    """`columns` of `table`'s row for `config` (matched on its configuration columns), null without one."""
    row = _where(table, config) if not table.empty else table
    return {prefix + c: row[c].iloc[0] if len(row) else None for c in columns}


# Each table's heading in the report: title, and the detail the printed tables add.
TITLES = {
    "runtime": (
        "Runtimes against eager",
        " (per configuration with a runtime other than eager, beside its eager twin: J per waveform"
        f" ± 95 % CI, {GROSS}; its change ± 95 % CI (Welch), gross and {NET} — gross for a GPU that"
        " would otherwise idle, net for one kept busy; time per waveform, SNR against the eager waveform"
        " (changes_audio below "
        + ", ".join(f"{db:g} dB in {dtype}" for dtype, db in EQUIVALENT_MIN_SNR_DB.items())
        + "), GPU busy fraction, setup overhead (compiling and capturing, quantising) beyond one steady"
        " generation (overhead_from: own, or the steps whose setup it reused) and the waveforms that pay"
        " it back, with the CI that the saving's gives; also report/runtime.csv)",
    ),
    "runtime_setup": (
        "Compile, capture and quantisation cost",
        " (setup generations that compiled or quantised, outside the windows; overhead: beyond one steady"
        " generation)",
    ),
    "launch_boundness": (
        "Launch-bound or compute-bound",
        f" (share of the window the GPU ran kernels, NVML; launch-bound below {LAUNCH_BOUND_BELOW_BUSY:g})",
    ),
}


def runtime_tables(results: pd.DataFrame, setup: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The report's runtime tables that this run has data for, keyed as in `TITLES`; each shows the
    model and the configuration columns that vary in the run (the runtime table also its runtime)."""
    config = config_columns(results)
    # (a null revision is a trial that failed before loading: no other configuration)
    keep = [c for c in config if c == "model" or results[c].nunique(dropna=c == _LOADED) > 1]
    tables: dict[str, pd.DataFrame] = {}
    busy = "gpu_busy_fraction" in results and results["gpu_busy_fraction"].notna().any()
    costs, bound = _setup_costs(setup, results), launch_boundness(results) if busy else None
    table = runtime_table(results, setup, costs=costs, bound=bound)
    if not table.empty:
        shown = [*keep, *(c for c in _RUNTIME if c in config and c not in keep)]
        tables["runtime"] = table[[*shown, *(c for c in table.columns if c not in config)]]
    if costs is not None:
        recorded = ["model", *(c for c in SETUP_AXES if c in keep)]
        work = [c for c in ("graphs_compiled", "denoisers_quantised") if c in costs]
        tables["runtime_setup"] = costs[
            [*recorded, "gpu_uuid", *work, "setup_s", "setup_energy_j", "overhead_s", "overhead_j"]
        ]
    if bound is not None:
        tables["launch_boundness"] = bound[[*keep, *(c for c in bound.columns if c not in config)]]
    return tables
