"""`t2a-ray analyze`: from a results table to fronts, fits, plain-text tables and a static report.

Read top to bottom, `_analyze` does:

1. keep the rows with status ``ok`` and a finite energy;
2. group them into configurations (a run's `trial_id`, or a table's parameter columns) with the mean
   and t-based 95 % CI over repeats/prompts of the energy and of each quality;
3. Pareto fronts of energy vs each quality, per group (CI-aware when there are repeats);
4. fits: energy vs steps, energy per audio second vs duration, energy per waveform vs batch size, phase
   shares;
5. carbon at the given intensity;
6. the plots that the table's columns allow (a note for each one skipped);
7. fronts.csv, configs.csv and index.html, each written atomically (temp file, then rename).

Re-running rewrites every output, and removes plots of an earlier analysis that no longer apply.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from t2a_ray.analysis import fits as _fits
from t2a_ray.analysis import plots as _plots
from t2a_ray.analysis.fronts import Front, compute_fronts, fronts_summary
from t2a_ray.analysis.runtime import TITLES as RUNTIME_TITLES
from t2a_ray.analysis.runtime import read_setup, runtime_tables
from t2a_ray.analysis.stats import mean_ci
from t2a_ray.analysis.tables import (
    MEASUREMENT_COLUMNS,
    REPEAT_COLUMNS,
    atomic_write,
    atomic_write_text,
    check_columns,
    load_table,
    read_quality_table,
)
from t2a_ray.schema import PHASE_COLUMNS

DEFAULT_INTENSITY_G_PER_KWH = 475.0  # CodeCarbon's world-average fallback, when neither table nor caller says
DEFAULT_RUN_ENERGY = "energy_per_waveform_j"
RUN_QUALITIES = (("clap_mean", "max"), ("fad", "min"), ("fad_inf", "min"))
RUN_GROUP_CANDIDATES = ("dataset", "prompt_set")
J_PER_KWH = 3.6e6

__all__ = [
    "Analysis",
    "DEFAULT_INTENSITY_G_PER_KWH",
    "analyze_run",
    "analyze_table",
    "load_table",
    "parse_quality",
    "read_run_results",
]


@dataclass
class Analysis:
    """What `analyze_table` / `analyze_run` found and wrote. `text()` is what the CLI prints."""

    source: str
    out_dir: Path
    report_path: Path
    fronts_csv_path: Path
    configs_csv_path: Path
    energy_col: str
    qualities: list[tuple[str, str]]
    group_cols: list[str]
    configs: pd.DataFrame  # one row per configuration: means, 95 % CIs, n
    fronts: list[Front]
    fronts_table: pd.DataFrame  # one row per front
    front_rows: pd.DataFrame  # the input rows written to fronts.csv
    fits: dict[str, pd.DataFrame]
    carbon: dict[str, object]
    plots: list[Path]
    notes: list[str] = field(default_factory=list)
    _text: str = field(default="", repr=False)

    def text(self) -> str:
        """The fronts and fits as plain-text tables."""
        return self._text

    def __repr__(self) -> str:
        return (
            f"Analysis({self.source!r}, configs={len(self.configs)}, fronts={len(self.fronts)}, "
            f"report_path={str(self.report_path)!r})"
        )


def parse_quality(spec: str | tuple[str, str]) -> tuple[str, str]:
    """``"clap:max"`` or ``("clap", "max")`` → ``("clap", "max")``; ValueError otherwise."""
    if isinstance(spec, str):
        col, sep, sense = spec.rpartition(":")
        if not sep or not col:
            raise ValueError(f"quality {spec!r}: write COLUMN:max or COLUMN:min")
    else:
        try:
            col, sense = spec
        except (TypeError, ValueError):
            raise ValueError(f"quality {spec!r}: give (column, 'max'|'min')") from None
    if sense not in ("max", "min"):
        raise ValueError(f"quality {col!r}: sense {sense!r} must be max or min")
    return str(col), sense


# ---------------------------------------------------------------------------------------------------------
# Entry points


def analyze_table(
    df: pd.DataFrame,
    energy_col: str,
    qualities: Iterable[str | tuple[str, str]],
    group_cols: Sequence[str] = (),
    out_dir: str | os.PathLike = "t2a-report",
    *,
    repeat_cols: Sequence[str] | None = None,
    config_cols: Sequence[str] | None = None,
    intensity_g_per_kwh: float | None = None,
    title: str | None = None,
) -> Analysis:
    """Fronts, fits and the report for any results table (one row per measurement).

    A configuration is `config_cols` when given; else `trial_id` when the table has one; else every
    column that is not the energy, a quality, a repeat column (`repeat_cols`, default those of
    ``repeat, prompt_id, seed`` present) or a known measurement column of results.parquet. Rows of one
    configuration are repeats: their means get 95 % CIs, and the fronts respect them. A table with one
    row per configuration gets plain dominance.
    """
    quals = [parse_quality(q) for q in qualities]
    group_cols = list(group_cols)
    check_columns(df, [energy_col] + [q for q, _ in quals] + group_cols, source="results table")
    repeat_cols = [c for c in (REPEAT_COLUMNS if repeat_cols is None else repeat_cols) if c in df.columns]
    if config_cols is not None:
        check_columns(df, config_cols, source="results table")
        key_cols = list(dict.fromkeys(list(config_cols) + group_cols))
        display = key_cols
    elif "trial_id" in df.columns:
        key_cols = list(dict.fromkeys(["trial_id"] + group_cols))
        display = _constant_within(df, key_cols, exclude={energy_col, *(q for q, _ in quals), *repeat_cols})
    else:
        taken = {energy_col, *(q for q, _ in quals), *repeat_cols, *MEASUREMENT_COLUMNS}
        key_cols = list(dict.fromkeys([c for c in df.columns if c not in taken] + group_cols))
        display = key_cols
    return _analyze(
        df,
        energy_col=energy_col,
        qualities=quals,
        group_cols=group_cols,
        key_cols=key_cols,
        display_cols=display,
        out_dir=Path(out_dir),
        intensity=intensity_g_per_kwh,
        source=title or "results table",
    )


def analyze_run(
    run_dir: str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    energy_col: str = DEFAULT_RUN_ENERGY,
    group_cols: Sequence[str] | None = None,
    intensity_g_per_kwh: float | None = None,
) -> Analysis:
    """Fronts, fits and the report of a run folder, written to RUN_DIR/report/ (or `out_dir`).

    Reads results.parquet (or, before the driver has merged it, trials/*.parquet) and, when present,
    quality.parquet (per trial_id: CLAP mean with CI, FAD, FAD∞). The carbon intensity is the caller's,
    else sweep.yaml's ``carbon.intensity_g_per_kwh``, else DEFAULT_INTENSITY_G_PER_KWH.
    """
    run = Path(run_dir)
    rows = read_run_results(run)
    check_columns(rows, ["trial_id", energy_col], source=str(run / "results.parquet"))
    notes: list[str] = []
    quality = None
    qpath = run / "quality.parquet"
    if qpath.is_file():
        quality = read_quality_table(qpath)
    else:
        notes.append(
            "No quality.parquet in the run: no Pareto fronts (set quality: {clap: true} in the sweep)."
        )
    quals = [(q, s) for q, s in RUN_QUALITIES if quality is not None and quality[q].notna().any()]
    if quality is not None and not quals:
        notes.append("quality.parquet has no CLAP or FAD values: no Pareto fronts.")
    if group_cols is None:
        have = set(rows.columns) | (set(quality.columns) if quality is not None else set())
        group_cols = [c for c in RUN_GROUP_CANDIDATES if c in have]
    if intensity_g_per_kwh is None:
        intensity_g_per_kwh = _sweep_intensity(run / "sweep.yaml")
    row_groups = [c for c in group_cols if c in rows.columns]
    key_cols = list(dict.fromkeys(["trial_id"] + row_groups))
    display = _constant_within(rows, key_cols, exclude={energy_col, *REPEAT_COLUMNS})
    return _analyze(
        rows,
        energy_col=energy_col,
        qualities=quals,
        group_cols=list(group_cols),
        key_cols=key_cols,
        display_cols=display,
        out_dir=Path(out_dir) if out_dir is not None else run / "report",
        intensity=intensity_g_per_kwh,
        source=f"run {run.name}",
        quality_table=quality,
        notes=notes,
        tables=runtime_tables(rows, read_setup(run)),
    )


# Each fit's heading: the HTML shows the title, the printed tables add the detail.
FIT_TITLES = {
    "energy_vs_steps": ("Energy vs steps", " (linear fit per series; slope in J/step)"),
    "energy_vs_batch": ("Energy per waveform vs batch size", ""),
    "energy_per_audio_s_vs_duration": ("Energy per audio second vs duration", " (linear fit)"),
    "phase_shares": ("Phase shares", " of the measured phase energy"),
    "repeat_spread": (
        "Spread over repeats",
        " (coefficient of variation per configuration; window duration beside energy)",
    ),
    "gpus": ("GPUs", " (idle power measured by each worker before its first trial)"),
    **RUNTIME_TITLES,
}


def read_run_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """results.parquet of a run folder, or its trial shards merged when it has none yet."""
    from t2a_ray.runfolder import RunFolder
    from t2a_ray.schema import read_shards

    run = RunFolder(run_dir)
    if run.results.is_file():
        return load_table(run.results)
    table, _ = read_shards(run, quarantine=False)  # reading never moves files: resume does that
    if table is None:
        raise ValueError(
            f"{run.root}: no results.parquet and no trial shards — is this a t2a-ray run folder?"
        )
    return table.to_pandas()


# ---------------------------------------------------------------------------------------------------------
# The analysis


def _analyze(
    table: pd.DataFrame,
    *,
    energy_col: str,
    qualities: list[tuple[str, str]],
    group_cols: list[str],
    key_cols: list[str],
    display_cols: list[str],
    out_dir: Path,
    intensity: float | None,
    source: str,
    quality_table: pd.DataFrame | None = None,
    notes: list[str] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> Analysis:
    """`tables`: more tables for the report (keys of FIT_TITLES), shown with the fits."""
    notes = list(notes or [])
    input_cols = list(table.columns)

    # 1. Rows used: status ok, finite energy.
    rows = table.copy()
    status_counts: dict[str, int] = {}
    if "status" in rows.columns:
        status_counts = {
            str(k): int(v) for k, v in rows["status"].astype("string").fillna("NA").value_counts().items()
        }
        rows = rows[rows["status"].astype("string") == "ok"]
    rows[energy_col] = pd.to_numeric(rows[energy_col], errors="coerce")
    no_energy = int(rows[energy_col].isna().sum())
    if no_energy:
        notes.append(f"{no_energy} row(s) with status ok but no {energy_col} were left out.")
        rows = rows[rows[energy_col].notna()]
    if rows.empty:
        raise ValueError(f"{source}: no rows with status ok and a value of {energy_col}")
    for q, _ in qualities:
        if q in rows.columns:
            rows[q] = _numeric(rows[q], q)

    # 2. Configurations: mean and 95 % CI over repeats.
    rows = rows.copy()
    if key_cols:
        rows["_config"] = rows.groupby(key_cols, dropna=False, sort=True).ngroup()
    else:  # nothing but measurements: every row is a configuration of its own
        rows["_config"] = np.arange(len(rows))
    row_qualities = [q for q, _ in qualities if q in rows.columns]
    configs = _aggregate(rows, display_cols, energy_col, row_qualities)
    quality_ci: dict[str, str] = {q: f"{q}_ci95" for q in row_qualities}
    if quality_table is not None:
        configs, qnotes = _merge_quality(configs, quality_table, [q for q, _ in qualities])
        notes += qnotes
        if "clap_ci95" in configs:
            configs["clap_mean_ci95"] = configs["clap_ci95"]
            quality_ci["clap_mean"] = "clap_mean_ci95"
    missing_groups = [g for g in group_cols if g not in configs.columns]
    if missing_groups:
        raise ValueError(f"{source}: group column(s) {', '.join(missing_groups)} not found")
    label_cols = _label_cols(configs, display_cols)
    order = _natural_order(configs, label_cols)
    configs = configs.loc[order]
    repeats = int(configs["n"].max()) > 1

    # 3. Pareto fronts.
    fronts = compute_fronts(
        configs,
        energy_col,
        qualities,
        group_cols,
        energy_ci_col=f"{energy_col}_ci95" if repeats else None,
        quality_ci_cols=quality_ci if repeats or quality_table is not None else None,
    )
    if qualities and not fronts:
        notes.append("No configuration has both an energy and a quality value: no Pareto fronts.")
    front_rows = _front_rows(rows, fronts, input_cols)

    # 4. Fits.
    axes = [c for c in display_cols if c in configs.columns and c not in ("trial_id", "run")]
    e_rows, e_configs, e_groups = _energy_view(rows, configs, energy_col, group_cols, label_cols)
    fits, fit_notes = _all_fits(
        e_rows, energy_col, [c for c in axes if c in e_groups or c not in group_cols], e_groups
    )
    notes += fit_notes
    fits.update(tables or {})

    # 5. Carbon.
    intensity = DEFAULT_INTENSITY_G_PER_KWH if intensity is None else float(intensity)
    carbon = _carbon(e_rows, configs, energy_col, intensity)

    # 6. Plots, 7. files.
    out_dir.mkdir(parents=True, exist_ok=True)
    plots, captions, plot_notes = _draw(
        configs, e_configs, fronts, fits, energy_col, quality_ci, label_cols, axes, e_groups, out_dir, repeats
    )
    notes += plot_notes
    for stale in out_dir.glob("plot_*.png"):
        if stale not in plots:
            stale.unlink()
    fronts_csv = atomic_write(out_dir / "fronts.csv", lambda tmp: front_rows.to_csv(tmp, index=False))
    shown = _shown_columns(configs, label_cols, energy_col, qualities, quality_ci)
    configs_csv = atomic_write(out_dir / "configs.csv", lambda tmp: configs[shown].to_csv(tmp, index=False))
    summary = fronts_summary(fronts, configs, [c for c in label_cols if c not in group_cols])

    used = {
        "rows": len(table),
        "used": len(rows),
        "status": status_counts,
        "configs": len(configs),
        "repeats": repeats,
    }
    analysis = Analysis(
        source=source,
        out_dir=out_dir,
        report_path=out_dir / "index.html",
        fronts_csv_path=fronts_csv,
        configs_csv_path=configs_csv,
        energy_col=energy_col,
        qualities=qualities,
        group_cols=group_cols,
        configs=configs,
        fronts=fronts,
        fronts_table=summary,
        front_rows=front_rows,
        fits=fits,
        carbon=carbon,
        plots=plots,
        notes=notes,
    )
    analysis._text = _render_text(analysis, used, label_cols, quality_ci)
    atomic_write_text(
        analysis.report_path, _render_html(analysis, used, label_cols, quality_ci, shown, captions)
    )
    return analysis


def _aggregate(
    rows: pd.DataFrame, display_cols: list[str], energy_col: str, qualities: list[str]
) -> pd.DataFrame:
    records, ids = [], []
    extra = [
        c
        for c in ("latency_s", "energy_per_audio_s_j", "avg_power_w")
        if c in rows.columns and c != energy_col
    ]
    for cfg, sub in rows.groupby("_config", sort=True):
        first = sub.iloc[0]
        rec: dict[str, object] = {c: first[c] for c in display_cols if c in sub.columns}
        mean, ci, n = mean_ci(sub[energy_col])
        rec |= {"n": n, energy_col: mean, f"{energy_col}_ci95": ci}
        for q in qualities:
            m, c, _ = mean_ci(sub[q])
            rec |= {q: m, f"{q}_ci95": c}
        for c in extra:
            rec[c] = float(pd.to_numeric(sub[c], errors="coerce").mean())
        if "carbon_g" in sub and "generations_in_window" in sub:
            per = pd.to_numeric(sub["carbon_g"], errors="coerce") / pd.to_numeric(
                sub["generations_in_window"], errors="coerce"
            )
            rec["_carbon_table_g"] = float(per.mean()) if per.notna().any() else math.nan
        records.append(rec)
        ids.append(cfg)
    configs = pd.DataFrame.from_records(records, index=pd.Index(ids, name="config"))
    configs["n"] = configs["n"].astype(int)
    return configs


def _merge_quality(
    configs: pd.DataFrame, quality: pd.DataFrame, metrics: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    q = quality.drop_duplicates("trial_id", keep="last").set_index("trial_id")
    q = q[[c for c in q.columns if c not in configs.columns or c in metrics]]
    merged = configs.drop(columns=[c for c in q.columns if c in configs.columns]).join(q, on="trial_id")
    merged.index = configs.index
    without = int(merged[metrics].isna().all(axis=1).sum()) if metrics else 0
    if metrics and without:
        notes.append(f"{without} configuration(s) have no quality score; they are left off the fronts.")
    for c in ("clap_model", "fad_model", "fad_reference"):
        if c in merged and merged[c].notna().any():
            notes.append(f"{c}: {', '.join(sorted(map(str, merged[c].dropna().unique())))}")
    if "scoring_energy_j" in merged and merged["scoring_energy_j"].notna().any():
        total = float(pd.to_numeric(merged["scoring_energy_j"], errors="coerce").sum())
        notes.append(f"Energy of quality scoring (metered apart, not in the fronts): {total:.4g} J.")
    return merged, notes


def _front_rows(rows: pd.DataFrame, fronts: list[Front], input_cols: list[str]) -> pd.DataFrame:
    """The input rows of each front's configurations, in front order (by energy), plus `front`."""
    parts = []
    for f in fronts:
        rank = {m: i for i, m in enumerate(f.members)}
        sub = rows[rows["_config"].isin(rank)].copy()
        sub = sub.assign(_rank=sub["_config"].map(rank)).sort_values("_rank", kind="stable")
        parts.append(sub[input_cols].assign(front=f.label))
    if not parts:
        return pd.DataFrame(columns=input_cols + ["front"])
    return pd.concat(parts, ignore_index=True)


def _energy_view(rows, configs, energy_col, group_cols, label_cols):
    """Rows and configurations for the energy fits and plots, without quality-only groups.

    A table in the paper's layout repeats each energy measurement once per dataset (the quality differs,
    the energy is the same window): fitting or drawing energy per dataset would duplicate every line. A
    group column whose values never change the energy is dropped here, keeping its first value's rows.
    """
    kept = list(group_cols)
    for g in group_cols:
        others = [c for c in label_cols if c != g and c in configs.columns]
        if not others or configs[g].nunique(dropna=False) < 2:
            continue
        by_others = configs.groupby(others, dropna=False)[energy_col]
        if by_others.nunique(dropna=False).max() <= 1 and by_others.size().max() > 1:
            first = sorted(configs[g].dropna().unique(), key=_sort_key)[0]
            configs = configs[configs[g] == first]
            rows = rows[rows[g] == first] if g in rows.columns else rows
            kept.remove(g)
    return rows, configs, kept


def _all_fits(rows, energy_col, axes, group_cols) -> tuple[dict[str, pd.DataFrame], list[str]]:
    fits: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    by = ["model"] if "model" in rows.columns else []
    by = by + [g for g in group_cols if g in rows.columns and g not in by]

    def varies(col: str) -> bool:
        return col in rows.columns and rows[col].nunique() > 1

    if varies("steps"):
        fits["energy_vs_steps"] = _fits.energy_vs_steps(rows, energy_col, by, axes)
    else:
        notes.append("Energy vs steps: skipped — " + _why("steps", rows))
    if varies("batch_size"):
        fits["energy_vs_batch"] = _fits.energy_vs_batch(rows, energy_col, by, axes)
    else:
        notes.append("Energy per waveform vs batch size: skipped — " + _why("batch_size", rows))
    if varies("duration_s"):
        if "energy_per_audio_s_j" in rows.columns and rows["energy_per_audio_s_j"].notna().any():
            y = "energy_per_audio_s_j"
            d = rows
        else:
            y = f"{energy_col}_per_audio_s"
            d = rows.assign(**{y: rows[energy_col] / pd.to_numeric(rows["duration_s"], errors="coerce")})
        fits["energy_per_audio_s_vs_duration"] = _fits.energy_per_audio_s_vs_duration(d, y, by, axes)
    else:
        notes.append("Energy per audio second vs duration: skipped — " + _why("duration_s", rows))
    if any(c in rows.columns for c in PHASE_COLUMNS):
        total = "gpu_energy_j" if "gpu_energy_j" in rows.columns else None
        shares = _fits.phase_shares(rows, by or [], total)
        if not shares.empty:
            fits["phase_shares"] = shares
        else:
            notes.append("Phase breakdown: skipped — the phase energy columns are empty.")
    else:
        notes.append(
            "Phase breakdown: skipped — the table has no phase energy columns ("
            + ", ".join(PHASE_COLUMNS)
            + ")."
        )
    spread = _fits.repeat_spread(rows, energy_col, by)
    if not spread.empty:
        fits["repeat_spread"] = spread
    gpus = _fits.per_gpu(rows)
    if not gpus.empty:
        fits["gpus"] = gpus
    return fits, notes


def _why(col: str, rows: pd.DataFrame) -> str:
    return f"the table has no `{col}` column." if col not in rows.columns else f"`{col}` has a single value."


def _carbon(rows, configs, energy_col, intensity) -> dict[str, object]:
    factor = _joules_per_unit(energy_col)
    configs["carbon_g_per_waveform"] = configs[energy_col] * factor / J_PER_KWH * intensity
    if "_carbon_table_g" in configs and configs["_carbon_table_g"].notna().any():
        configs["carbon_g_per_waveform"] = configs["_carbon_table_g"].fillna(configs["carbon_g_per_waveform"])
    if "carbon_g" in rows.columns and pd.to_numeric(rows["carbon_g"], errors="coerce").notna().any():
        total = float(pd.to_numeric(rows["carbon_g"], errors="coerce").sum())
        method = "sum of the table's carbon_g"
    else:
        parts = [c for c in ("gpu_energy_j", "cpu_energy_j", "dram_energy_j") if c in rows.columns]
        if parts:
            energy = float(rows[parts].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy().sum())
            method = f"{' + '.join(parts)} at {intensity:g} g CO2e/kWh"
        else:
            energy = float(rows[energy_col].sum()) * factor
            method = f"sum of {energy_col} at {intensity:g} g CO2e/kWh"
        total = energy / J_PER_KWH * intensity
    return {"intensity_g_per_kwh": intensity, "total_g": total, "method": method}


def _joules_per_unit(col: str) -> float:
    c = col.lower()
    for suffix, f in (("_kwh", 3.6e6), ("_wh", 3600.0), ("_kj", 1e3), ("_mj", 1e-3)):
        if c.endswith(suffix):
            return f
    return 1.0  # `_j`, or a column without a unit: taken as joules


def _draw(
    configs, e_configs, fronts, fits, energy_col, quality_ci, label_cols, axes, group_cols, out_dir, repeats
):
    """Draw the plots the data allow; a plot that cannot be drawn becomes a note, not an error."""
    plots: list[Path] = []
    captions: dict[Path, str] = {}
    notes: list[str] = []
    ci_col = f"{energy_col}_ci95" if repeats else None
    by = ["model"] if "model" in configs.columns else []

    def series_for(axis: str) -> list[str]:
        return by + _fits.held_fixed(e_configs, axis, [c for c in axes if c not in by], by)

    def draw(name: str, caption: str, make) -> None:
        try:
            p = make()
        except ValueError as e:
            notes.append(f"{name}: skipped — {e}.")
            return
        plots.append(p)
        captions[p] = caption

    if "energy_vs_steps" in fits:
        draw(
            "Energy vs steps",
            "Energy vs denoising steps per model: mean ± 95 % CI over repeats; dashed: the linear fit.",
            lambda: _plots.plot_energy_vs_axis(
                e_configs,
                "steps",
                energy_col,
                ci_col,
                series_for("steps"),
                out_dir / "plot_energy_vs_steps.png",
                fits=fits["energy_vs_steps"],
            ),
        )
    if "energy_vs_batch" in fits:
        draw(
            "Energy vs batch size",
            "Energy per waveform vs batch size: below the batch-1 value, batching pays.",
            lambda: _plots.plot_energy_vs_axis(
                e_configs,
                "batch_size",
                energy_col,
                ci_col,
                series_for("batch_size"),
                out_dir / "plot_energy_vs_batch.png",
                title=f"{_plots.axis_label(energy_col)} vs batch size (mean ± 95 % CI)",
            ),
        )
    by_metric: dict[str, list[Front]] = {}
    for f in fronts:
        by_metric.setdefault(f.metric, []).append(f)
    for metric, fs in by_metric.items():
        draw(
            f"Energy vs {metric}",
            f"Energy vs {metric}: outlined points are on the front ({fs[0].dominance} dominance), the black "
            "staircase is the Pareto front of the means, the star the knee; labels give the other parameters.",
            lambda metric=metric, fs=fs: _plots.plot_fronts(
                configs,
                fs,
                energy_col,
                ci_col,
                quality_ci.get(metric),
                label_cols,
                out_dir / f"plot_front_{_slug(metric)}.png",
            ),
        )
    if not fronts:
        notes.append("Energy–quality scatter: skipped — no quality values to draw fronts from.")
    if "phase_shares" in fits:
        shares = fits["phase_shares"]
        draw(
            "Phase breakdown",
            "Phase shares of the measured phase energy, summed over all windows of each model.",
            lambda: _plots.plot_phases(
                shares,
                [c for c in ("model", *group_cols) if c in shares] or ["n"],
                out_dir / "plot_phases.png",
            ),
        )
    return plots, captions, notes


# ---------------------------------------------------------------------------------------------------------
# Text and HTML


def _fmt_float(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.4g}"


def _table_text(df: pd.DataFrame) -> str:
    if df.empty:
        return "  (none)"
    return df.to_string(index=False, float_format=_fmt_float, na_rep="–")


def _front_points(analysis: Analysis, front: Front, label_cols, quality_ci) -> pd.DataFrame:
    c = analysis.configs.loc[list(front.members)]
    e, q = analysis.energy_col, front.metric
    cols = [x for x in label_cols if x not in dict(front.group)] + ["n", e, f"{e}_ci95", q]
    if quality_ci.get(q) in c.columns:
        cols.append(quality_ci[q])
    out = c[[x for x in cols if x in c.columns]].copy()
    out = out[[x for x in out.columns if not (x.endswith("_ci95") and out[x].isna().all())]]
    out.insert(0, "knee", ["*" if i == front.knee else "" for i in c.index])
    return out.rename(columns={f"{e}_ci95": "±95%", quality_ci.get(q, "_"): f"{q} ±95%"})


def _render_text(a: Analysis, used: dict, label_cols, quality_ci) -> str:
    lines = [
        f"t2a-ray analysis of {a.source}",
        _used_line(a, used),
        f"Carbon: {a.carbon['total_g']:.4g} g CO2e ({a.carbon['method']})",
        "",
    ]
    if a.fronts:
        lines += [
            "Pareto fronts (energy: " + a.energy_col + ", lower is better)",
            _table_text(a.fronts_table),
            "",
        ]
        for f in a.fronts:
            lines += [
                f"Front {f.label} ({f.dominance} dominance; * = knee)",
                _table_text(_front_points(a, f, label_cols, quality_ci)),
                "",
            ]
    for key, (title, detail) in FIT_TITLES.items():
        if key in a.fits:
            lines += [title + detail, _table_text(a.fits[key]), ""]
    if a.notes:
        lines += ["Notes"] + [f"  - {n}" for n in a.notes] + [""]
    lines.append(f"Report: {a.report_path}")
    lines.append(f"Fronts: {a.fronts_csv_path}")
    return "\n".join(lines)


def _used_line(a: Analysis, used: dict) -> str:
    status = (
        ", ".join(f"{v} {k}" for k, v in sorted(used["status"].items()))
        if used["status"]
        else "no status column"
    )
    rep = "with repeats (95 % CIs, CI-aware fronts)" if used["repeats"] else "one row each (plain dominance)"
    return (
        f"Rows: {used['used']} of {used['rows']} used ({status}); {used['configs']} configurations, {rep}; "
        f"energy column: {a.energy_col}"
    )


def _shown_columns(configs, label_cols, energy_col, qualities, quality_ci) -> list[str]:
    cols = list(label_cols) + ["n", energy_col, f"{energy_col}_ci95"]
    for q, _ in qualities:
        cols += [q, quality_ci.get(q, f"{q}_ci95")]
    cols += ["carbon_g_per_waveform", "latency_s", "avg_power_w"]
    return [c for c in dict.fromkeys(cols) if c in configs.columns]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table.t{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}table.t th,table.t td{padding:.2rem .6rem;
border-bottom:1px solid #eee;text-align:right}table.t th{background:#f6f6f6}figure{margin:1rem 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85rem;color:#555}.meta{color:#555;font-size:.9rem}
"""


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>none</em></p>"
    return df.to_html(index=False, na_rep="–", float_format=_fmt_float, border=0, classes="t", escape=True)


def _render_html(a: Analysis, used: dict, label_cols, quality_ci, shown, captions) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>t2a-ray report — {e(a.source)}</title><style>{_CSS}</style></head><body>",
        f"<h1>t2a-ray report — {e(a.source)}</h1>",
        f"<p class='meta'>{e(_used_line(a, used))}.<br>Carbon: {a.carbon['total_g']:.4g} g CO2e "
        f"({e(str(a.carbon['method']))}); per waveform in the configurations table at "
        f"{a.carbon['intensity_g_per_kwh']:g} g CO2e/kWh.<br>Files: <a href='fronts.csv'>fronts.csv</a> "
        f"(the input rows on a front), <a href='configs.csv'>configs.csv</a> (one row per configuration).</p>",
    ]
    if a.fronts:
        parts += [
            "<h2>Pareto fronts</h2>",
            "<p>Energy is minimised; each quality is maximised or minimised as marked. "
            "<em>ci95</em> dominance drops a configuration only when another beats it in both objectives "
            "beyond the 95 % confidence intervals of their repeats; <em>plain</em> is ordinary dominance. "
            "The hypervolume is measured against the stated reference point (energy, quality).</p>",
            _html_table(a.fronts_table),
        ]
        for f in a.fronts:
            parts += [f"<h3>{e(f.label)}</h3>", _html_table(_front_points(a, f, label_cols, quality_ci))]
    if a.plots:
        parts.append("<h2>Plots</h2>")
    for p in a.plots:
        parts.append(
            f"<figure><img src='{e(p.name)}' alt='{e(captions.get(p, p.stem))}'>"
            f"<figcaption>{e(captions.get(p, ''))}</figcaption></figure>"
        )
    for key, (title, _) in FIT_TITLES.items():
        if key in a.fits:
            parts += [f"<h2>{e(title)}</h2>", _html_table(a.fits[key])]
    parts += ["<h2>Configurations</h2>", _html_table(a.configs[shown])]
    if a.notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{e(n)}</li>" for n in a.notes] + ["</ul>"]
    parts.append("<p class='meta'>Written by t2a-ray analyze.</p></body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------------
# helpers


def _constant_within(df: pd.DataFrame, key_cols: list[str], exclude: set[str]) -> list[str]:
    """Key columns, then the non-measurement columns that are constant within each configuration."""
    out = list(key_cols)
    g = df.groupby(key_cols, dropna=False, sort=False)
    for c in df.columns:
        if c in out or c in exclude or c in MEASUREMENT_COLUMNS:
            continue
        if g[c].nunique(dropna=False).max() <= 1:
            out.append(c)
    return out


def _label_cols(configs: pd.DataFrame, display_cols: list[str]) -> list[str]:
    """The display columns that tell configurations apart (model first); all of them if none does."""
    varying = [
        c for c in display_cols if c in configs and c != "trial_id" and configs[c].nunique(dropna=False) > 1
    ]
    if "model" in configs and "model" not in varying:
        varying.insert(0, "model")
    elif "model" in varying:
        varying.remove("model")
        varying.insert(0, "model")
    return varying or [c for c in display_cols if c in configs]


def _natural_order(configs: pd.DataFrame, cols: list[str]) -> list:
    def key(idx):
        row = configs.loc[idx]
        return tuple(_sort_key(row[c]) for c in cols) + (idx,)

    return sorted(configs.index, key=key)


def _sort_key(v: object) -> tuple:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return (2, 0.0, "")
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def _numeric(s: pd.Series, name: str) -> pd.Series:
    out = pd.to_numeric(s, errors="coerce")
    bad = int((out.isna() & s.notna()).sum())
    if bad:
        example = s[out.isna() & s.notna()].iloc[0]
        raise ValueError(f"quality column {name!r}: {bad} value(s) are not numbers (e.g. {example!r})")
    return out.astype(np.float64)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _sweep_intensity(path: Path) -> float | None:
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # the sweep file is the driver's to validate; here the default intensity applies
    carbon = data.get("carbon") if isinstance(data, dict) else None
    value = carbon.get("intensity_g_per_kwh") if isinstance(carbon, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
