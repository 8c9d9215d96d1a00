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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t2a_ray.analysis.gpu_effect import worker_table
from t2a_ray.analysis.hosts import reference_table
from t2a_ray.analysis.pipeline import (
    TABLE_CSVS,
    Analysis,
    AnalysisOptions,
    build,
    configuration_keys,
    constant_within,
    parse_quality,
)
from t2a_ray.analysis.render import render_html, render_text
from t2a_ray.analysis.report_paths import ReportPaths
from t2a_ray.analysis.runtime_tables import read_setup, runtime_tables
from t2a_ray.analysis.search import predicted_table, trial_grid
from t2a_ray.analysis.tables import AnalysisError, check_columns, load_table, read_quality_table
from t2a_ray.analysis.throttle import throttle_note
from t2a_ray.analysis.values import count
from t2a_ray.config import prompt_notes
from t2a_ray.errors import ConfigError
from t2a_ray.frozen import load_run_sweep
from t2a_ray.runfolder import RunFolder, atomic_write, atomic_write_text
from t2a_ray.schema import QUALITY_METRICS, REPEAT_COLUMNS, read_shards

DEFAULT_RUN_ENERGY = "energy_per_waveform_j"
RUN_QUALITIES = tuple(QUALITY_METRICS.items())
RUN_GROUP_CANDIDATES = ("dataset", "prompt_set")
# The columns of report/fits.csv after the series' key columns.
FITS_CSV_COLUMNS = ("slope_j_per_step", "intercept_j", "r2", "n")

__all__ = [
    "Analysis",
    "Report",
    "ReportPaths",
    "TableSource",
    "analyze_run",
    "analyze_table",
    "parse_quality",
    "read_run_results",
    "write_report",
]


@dataclass(frozen=True)
class Report:
    """An `Analysis` written to a report folder: the value, and where its files are. Reads through to
    the analysis (``report.configs``, ``report.fronts``); `text()` is what the CLI prints."""

    analysis: Analysis
    paths: ReportPaths

    def __getattr__(self, name: str):
        if name in ("analysis", "paths"):  # not yet set (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.analysis, name)

    def text(self) -> str:
        """The fronts and fits as plain-text tables, and the files written."""
        return render_text(self.analysis, self.paths)

    @property
    def out_dir(self) -> Path:
        return self.paths.out_dir

    @property
    def report_path(self) -> Path:
        return self.paths.report_path

    @property
    def fronts_csv_path(self) -> Path:
        return self.paths.fronts_csv_path

    @property
    def configs_csv_path(self) -> Path:
        return self.paths.configs_csv_path

    @property
    def fits_csv_path(self) -> Path:
        return self.paths.fits_csv_path

    def table_csv_path(self, key: str) -> Path:
        return self.paths.table_csv_path(key)

    @property
    def plots(self) -> list[Path]:
        return self.paths.plot_paths(f.name for f in self.analysis.figures)

    def __repr__(self) -> str:
        return f"Report({self.analysis!r}, report_path={str(self.report_path)!r})"


@dataclass(frozen=True)
class TableSource:
    """What the caller knows of a results table beyond its rows: a title for the printout, notes from
    reading it, the columns of a recognised format that are readings (never keys), and each GPU's
    reference workload (`hosts.reference_table`) for the warnings of comparisons that mix hosts."""

    title: str | None = None
    notes: Sequence[str] = ()
    not_keys: Iterable[str] = ()
    reference: pd.DataFrame | None = None


def analyze_table(
    df: pd.DataFrame,
    energy_col: str,
    qualities: Iterable[str | tuple[str, str]],
    group_cols: Sequence[str] = (),
    out_dir: str | os.PathLike = "t2a-report",
    *,
    config_cols: Sequence[str] | None = None,
    intensity_g_per_kwh: float | None = None,
    source: TableSource = TableSource(),
) -> Report:
    """Fronts, fits and the report for any results table (one row per measurement), written to `out_dir`.

    A configuration is `config_cols` when given; else `trial_id` when the table has one; else the columns
    `pipeline.configuration_keys` infers (never the energy, a quality, a repeat column — those of
    ``repeat, prompt_id, seed`` present —, a measurement column of results.parquet, a column of
    `source.not_keys`, or a numeric column with a value of its own in most rows); a note names the
    columns used and those left out. Rows of one configuration are repeats: their means get 95 % CIs, and
    the fronts respect them. A table with one row per configuration gets plain dominance. Carbon is
    computed at `intensity_g_per_kwh`, else at the table's own per-row intensity, else not at all.
    `source` (`TableSource`): the title, notes, readings and reference workloads of the table.
    """
    out = _report_folder(out_dir)
    quals = [parse_quality(q) for q in qualities]
    group_cols = list(group_cols)
    notes = list(source.notes)
    check_columns(df, [energy_col] + [q for q, _ in quals] + group_cols, source="results table")
    repeat_cols = [c for c in REPEAT_COLUMNS if c in df.columns]
    taken = {energy_col, *(q for q, _ in quals), *repeat_cols}
    if config_cols is not None:
        check_columns(df, config_cols, source="--config-cols")
        key_cols = list(dict.fromkeys(list(config_cols) + group_cols))
        display = key_cols
    elif "trial_id" in df.columns:
        key_cols = list(dict.fromkeys(["trial_id"] + group_cols))
        display = constant_within(df, key_cols, exclude=taken)
    else:
        key_cols, measured = configuration_keys(df, taken, group_cols, set(source.not_keys))
        display = key_cols
        left_out = f"; left out as measurements: {', '.join(measured)}" if measured else ""
        notes.append(
            f"Configurations by {', '.join(key_cols) or '(nothing: every row its own)'}{left_out} "
            "(name them with --config-cols)."
        )
    options = AnalysisOptions(
        energy_col=energy_col,
        qualities=quals,
        group_cols=group_cols,
        key_cols=key_cols,
        display_cols=display,
        intensity=intensity_g_per_kwh,
        source=source.title or "results table",
        notes=notes,
        reference=source.reference,
    )
    return write_report(build(df, options), out)


def analyze_run(
    run_dir: str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    energy_col: str = DEFAULT_RUN_ENERGY,
    group_cols: Sequence[str] | None = None,
    intensity_g_per_kwh: float | None = None,
) -> Report:
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
        try:
            sweep = load_run_sweep(run)
        except ConfigError as e:  # e.g. a copied run whose FAD reference folder stayed behind
            notes.append(f"Carbon intensity not read: {e}.")
    if intensity_g_per_kwh is None and sweep is not None:
        intensity_g_per_kwh = sweep.carbon_intensity_g_per_kwh
    if sweep is not None and "prompt_truncated" in rows.columns:
        cut = rows[rows["prompt_truncated"].fillna(False).astype(bool)]
        notes += prompt_notes(sweep, cut.groupby("model")["prompt_id"].agg(set).to_dict())
    row_groups = [c for c in group_cols if c in rows.columns]
    key_cols = list(dict.fromkeys(["trial_id"] + row_groups))
    options = AnalysisOptions(
        energy_col=energy_col,
        qualities=quals,
        group_cols=list(group_cols),
        key_cols=key_cols,
        display_cols=constant_within(rows, key_cols, exclude={energy_col, *REPEAT_COLUMNS}),
        intensity=intensity_g_per_kwh,
        source=f"run {run.root.name}",
        quality_table=quality,
        notes=notes,
        reference=reference_table([run.root]),
    )
    analysis = build(rows, options)
    # A run's own tables after the analysis's: compiled runtimes' costs, the search, the workers.
    tables = runtime_tables(rows, read_setup(run.root))
    search_notes: list[str] = []
    if sweep is not None and sweep.search.strategy != "grid":
        search_notes, predicted = _search_summary(sweep, rows, energy_col)
        if predicted is not None:
            tables["search_predicted"] = predicted
    workers = worker_table(run.latest_log("gpus"), run.latest_log("workers"), run.latest_log("plan"))
    if not workers.empty:
        tables["workers"] = workers
    return write_report(analysis.with_tables(tables, search_notes), out)


def _search_summary(sweep, rows: pd.DataFrame, energy_col: str) -> tuple[list[str], pd.DataFrame | None]:
    """A search run: how much of the grid it measured (a note), and what its cost model predicts for the
    rest (a table; None when every configuration was measured)."""
    grid = trial_grid(sweep.trials())
    measured = rows[rows["status"] == "ok"].groupby("trial_id")[energy_col].mean()
    search = sweep.search
    note = (
        f"Search {search.strategy} (budget {search.budget_kind} {search.budget:g}): "
        f"{count(int(grid['trial_id'].isin(measured.index).sum()), 'configuration')} of {len(grid)} measured; "
        "the fronts are the measured configurations'."
    )
    unmeasured = predicted_table(grid, measured)
    return [note], (None if unmeasured.empty else unmeasured)


def read_run_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """results.parquet of a run folder, or its trial shards merged when it has none yet."""
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


def write_report(a: Analysis, out_dir: str | os.PathLike) -> Report:
    """Write the report folder of `a` at `out_dir`: CSVs, plots, index.html; remove plots that no longer
    apply.

    AnalysisError, naming the folder and the reason, when the file system refuses (full, read-only).
    """
    report = Report(a, ReportPaths(Path(out_dir)))
    try:
        _write(a, report.paths)
    except OSError as e:
        raise AnalysisError(f"--out {report.out_dir}: cannot write ({e.strerror or e})") from None
    return report


def _write(a: Analysis, paths: ReportPaths) -> None:
    out = paths.out_dir
    out.mkdir(exist_ok=True)
    for fig in a.figures:
        atomic_write(out / fig.name, lambda f, png=fig.png: f.write(png))
    plots = paths.plot_paths(f.name for f in a.figures)
    for stale in out.glob("plot_*.png"):
        if stale not in plots:
            stale.unlink()
    _write_csv_or_remove(paths.fronts_csv_path, a.front_rows)
    _write_csv(paths.configs_csv_path, a.configs[a.shown])
    steps = a.fits.get("energy_vs_steps")
    if steps is not None and not steps.empty:
        keys = [c for c in steps.columns if c not in FITS_CSV_COLUMNS and c != "slope_ci95_j_per_step"]
        _write_csv(paths.fits_csv_path, steps[keys + list(FITS_CSV_COLUMNS)])
    else:
        paths.fits_csv_path.unlink(missing_ok=True)
    for key in TABLE_CSVS:  # written as shown; removed when this analysis has none
        _write_csv_or_remove(paths.table_csv_path(key), a.fits.get(key))
    atomic_write_text(paths.report_path, render_html(a, paths))


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
