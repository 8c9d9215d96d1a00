"""`t2a-ray analyze`: the entry points, and the one place that writes the report folder.

`analyze_table` and `analyze_run` decide what a configuration is, `pipeline.build` computes the
`Analysis` (no I/O), `render` turns it into text and HTML, and `write_report` writes fronts.csv,
configs.csv, fits.csv, gpu_effect.csv, runtime.csv and latency.csv (where they have rows: never a header
alone), the PNG plots and index.html — each atomically (temp file, fsync, rename) — and removes files of
an earlier analysis that no longer apply. Re-running rewrites every output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from t2a_ray.analysis.gpu_effect import worker_table
from t2a_ray.analysis.hosts import reference_table
from t2a_ray.analysis.pipeline import (
    TABLE_CSVS,
    Analysis,
    build,
    configuration_keys,
    constant_within,
    parse_quality,
)
from t2a_ray.analysis.render import render_html
from t2a_ray.analysis.runtime import read_setup, runtime_tables
from t2a_ray.analysis.search import predicted_table, trial_grid
from t2a_ray.analysis.tables import AnalysisError, check_columns, load_table, read_quality_table
from t2a_ray.analysis.throttle import throttle_note
from t2a_ray.analysis.values import count
from t2a_ray.runfolder import RunFolder, atomic_write, atomic_write_text
from t2a_ray.schema import REPEAT_COLUMNS

DEFAULT_RUN_ENERGY = "energy_per_waveform_j"
RUN_QUALITIES = (("clap_mean", "max"), ("fad", "min"), ("fad_inf", "min"))
RUN_GROUP_CANDIDATES = ("dataset", "prompt_set")
# The columns of report/fits.csv after the series' key columns.
FITS_CSV_COLUMNS = ("slope_j_per_step", "intercept_j", "r2", "n")

__all__ = ["Analysis", "analyze_run", "analyze_table", "parse_quality", "read_run_results", "write_report"]


def analyze_table(
    df: pd.DataFrame,
    energy_col: str,
    qualities: Iterable[str | tuple[str, str]],
    group_cols: Sequence[str] = (),
    out_dir: str | os.PathLike = "t2a-report",
    *,
    repeat_cols: Sequence[str] | None = None,
    config_cols: Sequence[str] | None = None,
    not_keys: Iterable[str] = (),
    intensity_g_per_kwh: float | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
    reference: pd.DataFrame | None = None,
) -> Analysis:
    """Fronts, fits and the report for any results table (one row per measurement), written to `out_dir`.

    A configuration is `config_cols` when given; else `trial_id` when the table has one; else the columns
    `pipeline.configuration_keys` infers (never the energy, a quality, a repeat column — `repeat_cols`,
    default those of ``repeat, prompt_id, seed`` present —, a measurement column of results.parquet, a
    column of `not_keys`, or a numeric column with a value of its own in most rows); a note names the
    columns used and those left out. Rows of one configuration are repeats: their means get 95 % CIs, and
    the fronts respect them. A table with one row per configuration gets plain dominance. Carbon is
    computed at `intensity_g_per_kwh`, else at the table's own per-row intensity, else not at all.
    `reference` is each GPU's reference workload (`hosts.reference_table`), for the warnings of
    comparisons that mix hosts.
    """
    out = _report_folder(out_dir)
    quals = [parse_quality(q) for q in qualities]
    group_cols = list(group_cols)
    notes = list(notes)
    check_columns(df, [energy_col] + [q for q, _ in quals] + group_cols, source="results table")
    repeat_cols = [c for c in (REPEAT_COLUMNS if repeat_cols is None else repeat_cols) if c in df.columns]
    taken = {energy_col, *(q for q, _ in quals), *repeat_cols}
    if config_cols is not None:
        check_columns(df, config_cols, source="--config-cols")
        key_cols = list(dict.fromkeys(list(config_cols) + group_cols))
        display = key_cols
    elif "trial_id" in df.columns:
        key_cols = list(dict.fromkeys(["trial_id"] + group_cols))
        display = constant_within(df, key_cols, exclude=taken)
    else:
        key_cols, measured = configuration_keys(df, taken, group_cols, set(not_keys))
        display = key_cols
        left_out = f"; left out as measurements: {', '.join(measured)}" if measured else ""
        notes.append(
            f"Configurations by {', '.join(key_cols) or '(nothing: every row its own)'}{left_out} "
            "(name them with --config-cols)."
        )
    analysis = build(
        df,
        energy_col=energy_col,
        qualities=quals,
        group_cols=group_cols,
        key_cols=key_cols,
        display_cols=display,
        out_dir=out,
        intensity=intensity_g_per_kwh,
        source=title or "results table",
        notes=notes,
        reference=reference,
    )
    write_report(analysis)
    return analysis


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
    else the sweep's (``carbon.intensity_g_per_kwh`` of its sweep.yaml, read by `load_run_sweep`), else none:
    then no carbon is shown.
    """
    run = RunFolder(run_dir)
    out = _report_folder(run.report_dir if out_dir is None else out_dir)
    rows = read_run_results(run.root)
    check_columns(rows, ["trial_id", energy_col], source=str(run.results))
    notes: list[str] = []
    quality = None
    if run.quality.is_file():
        quality = read_quality_table(run.quality)
    else:
        notes.append(
            "No quality.parquet in the run: no Pareto fronts (set quality: {clap: true} in the sweep)."
        )
    quals = [(q, s) for q, s in RUN_QUALITIES if quality is not None and quality[q].notna().any()]
    if quality is not None and not quals:
        notes.append("quality.parquet has no CLAP or FAD values: no Pareto fronts.")
    throttled = throttle_note(rows)
    if throttled:
        notes.append(throttled)
    if group_cols is None:
        have = set(rows.columns) | (set(quality.columns) if quality is not None else set())
        group_cols = [c for c in RUN_GROUP_CANDIDATES if c in have]
    sweep = None
    if run.sweep_yaml.is_file():
        from t2a_ray.errors import ConfigError
        from t2a_ray.frozen import load_run_sweep

        try:
            sweep = load_run_sweep(run)
        except ConfigError as e:  # e.g. a copied run whose FAD reference folder stayed behind
            notes.append(f"Carbon intensity not read: {e}.")
    if intensity_g_per_kwh is None and sweep is not None:
        intensity_g_per_kwh = sweep.carbon_intensity_g_per_kwh
    if sweep is not None and "prompt_truncated" in rows.columns:
        from t2a_ray.config import prompt_notes

        cut = rows[rows["prompt_truncated"].fillna(False).astype(bool)]
        notes += prompt_notes(sweep, cut.groupby("model")["prompt_id"].agg(set).to_dict())
    row_groups = [c for c in group_cols if c in rows.columns]
    key_cols = list(dict.fromkeys(["trial_id"] + row_groups))
    analysis = build(
        rows,
        energy_col=energy_col,
        qualities=quals,
        group_cols=list(group_cols),
        key_cols=key_cols,
        display_cols=constant_within(rows, key_cols, exclude={energy_col, *REPEAT_COLUMNS}),
        out_dir=out,
        intensity=intensity_g_per_kwh,
        source=f"run {run.root.name}",
        quality_table=quality,
        notes=notes,
        reference=reference_table([run.root]),
    )
    analysis.fits.update(runtime_tables(rows, read_setup(run.root)))  # compiled runtimes' costs
    if sweep is not None and sweep.search.strategy != "grid":
        _search_summary(analysis, sweep, rows, energy_col)
    workers = worker_table(run.latest_log("gpus"), run.latest_log("workers"), run.latest_log("plan"))
    if not workers.empty:
        analysis.fits["workers"] = workers
    write_report(analysis)
    return analysis


def _search_summary(analysis, sweep, rows: pd.DataFrame, energy_col: str) -> None:
    """A search run: how much of the grid it measured, and what its cost model predicts for the rest."""
    grid = trial_grid(sweep.trials())
    measured = rows[rows["status"] == "ok"].groupby("trial_id")[energy_col].mean()
    search = sweep.search
    analysis.notes.append(
        f"Search {search.strategy} (budget {search.budget_kind} {search.budget:g}): "
        f"{count(int(grid['trial_id'].isin(measured.index).sum()), 'configuration')} of {len(grid)} measured; "
        "the fronts are the measured configurations'."
    )
    unmeasured = predicted_table(grid, measured)
    if not unmeasured.empty:
        analysis.fits["search_predicted"] = unmeasured


def read_run_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """results.parquet of a run folder, or its trial shards merged when it has none yet."""
    from t2a_ray.schema import read_shards

    run = RunFolder(run_dir)
    if run.results.is_file():
        return load_table(run.results)
    table, _ = read_shards(run, quarantine=False)  # reading never moves files: resume does that
    if table is None:
        raise AnalysisError(
            f"{run.root}: no results.parquet and no trial shards — is this a t2a-ray run folder?"
        )
    return table.to_pandas()


# ---------------------------------------------------------------------------------------------------------
# The report folder


def write_report(a: Analysis) -> None:
    """Write the report folder of `a`: CSVs, plots, index.html; remove plots that no longer apply.

    AnalysisError, naming the folder and the reason, when the file system refuses (full, read-only).
    """
    try:
        _write(a)
    except OSError as e:
        raise AnalysisError(f"--out {a.out_dir}: cannot write ({e.strerror or e})") from None


def _write(a: Analysis) -> None:
    out = a.out_dir
    out.mkdir(exist_ok=True)
    for fig in a.figures:
        atomic_write(out / fig.name, lambda f, png=fig.png: f.write(png))
    for stale in out.glob("plot_*.png"):
        if stale not in a.plots:
            stale.unlink()
    _write_csv_or_remove(a.fronts_csv_path, a.front_rows)
    _write_csv(a.configs_csv_path, a.configs[a.shown])
    steps = a.fits.get("energy_vs_steps")
    if steps is not None and not steps.empty:
        keys = [c for c in steps.columns if c not in FITS_CSV_COLUMNS and c != "slope_ci95_j_per_step"]
        _write_csv(a.fits_csv_path, steps[keys + list(FITS_CSV_COLUMNS)])
    else:
        a.fits_csv_path.unlink(missing_ok=True)
    for key in TABLE_CSVS:  # written as shown; removed when this analysis has none
        _write_csv_or_remove(a.table_csv_path(key), a.fits.get(key))
    atomic_write_text(a.report_path, render_html(a))


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    """The one writer of the report's CSVs: text cleared of spreadsheet formulas first."""
    atomic_write(path, lambda f: spreadsheet_safe(df).to_csv(f, index=False))


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # text that is a number: no formula


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every text cell (and column name) that a spreadsheet would run as a formula written as
    text: prefixed with a single quote, as OWASP recommends. Numbers stay numbers (-1.5 is not text)."""

    def safe(value):
        if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
            return f"'{value}"
        return value

    out = df.rename(columns=lambda c: safe(c) if isinstance(c, str) else c)
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map(safe, na_action="ignore")
    return out


def _write_csv_or_remove(path: Path, df: pd.DataFrame | None) -> None:
    """A table with rows is written; without (none, or empty), the file of an earlier analysis goes."""
    if df is None or df.empty:
        path.unlink(missing_ok=True)
    else:
        _write_csv(path, df)


def _report_folder(path: str | os.PathLike) -> Path:
    """`path` as the report folder, checked before any work: its parent must exist and be writable."""
    out = Path(path).absolute()
    target = out if out.is_dir() else out.parent
    if out.exists() and not out.is_dir():
        raise AnalysisError(f"--out {path}: is a file, not a folder")
    if target.exists() and not target.is_dir():
        raise AnalysisError(f"--out {path}: {target} is a file, not a folder")
    if not target.is_dir():
        raise AnalysisError(f"--out {path}: its parent folder {target} does not exist")
    if not os.access(target, os.W_OK | os.X_OK):
        raise AnalysisError(f"--out {path}: {target} is not writable (permission denied)")
    return out
