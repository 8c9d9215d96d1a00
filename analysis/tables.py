"""Reading results tables, and the quality table's schema.

Files are written through `t2a_ray.runfolder.atomic_write` (temp file, fsync, rename): a reader never
sees half a file, and a crash leaves the previous version in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from t2a_ray.runfolder import atomic_write


class AnalysisError(ValueError):
    """Input the analysis cannot use (a table, a column, an option, the report folder): one line, exit 2."""


# quality.parquet: one row per configuration (trial_id). Written by the orchestrator through
# `write_quality_table`, after the energy windows (scoring is never inside a measured window).
QUALITY_COLUMNS: dict[str, str] = {
    "trial_id": "string",  # the configuration, as in results.parquet
    "n_generations": "Int64",  # waveforms scored for this configuration
    "clap_mean": "Float64",  # mean CLAP score (cosine, −1…1) over the generations
    "clap_std": "Float64",  # sample standard deviation of the per-generation scores
    "clap_ci95": "Float64",  # t-based 95 % CI half-width of clap_mean
    "clap_model": "string",  # checkpoint / weight mode that scored CLAP
    "fad": "Float64",  # FAD of all generations against the reference set
    "fad_inf": "Float64",  # FAD∞: intercept of FAD vs 1/N, extrapolated to N → ∞
    "fad_inf_slope": "Float64",  # slope of that fit (FAD units × N)
    "fad_inf_r2": "Float64",  # R² of that fit
    "fad_n_generated": "Int64",  # embeddings on the generated side
    "fad_n_reference": "Int64",  # embeddings on the reference side
    "fad_reference": "string",  # the reference folder
    "fad_model": "string",  # embedding model of FAD
    "scoring_s": "Float64",  # wall time of scoring this configuration (s)
    "scoring_energy_j": "Float64",  # energy of scoring, metered by the caller (J); null if unmetered
    "scoring_energy_method": "string",  # how scoring_energy_j was obtained (e.g. nvml-counter)
}


def load_table(path: str | os.PathLike, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a results table from a .csv or .parquet file.

    Raises AnalysisError (the CLI's exit 2) for a missing file, another suffix, an empty table, or missing
    `required` columns — naming what is there, so a typo in `--energy` is easy to see.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise AnalysisError(f"{p}: unsupported table suffix {p.suffix or '(none)'!r}; use .csv or .parquet")
    if not p.is_file():
        raise AnalysisError(f"{p}: no such file")
    df = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
    if df.empty:
        raise AnalysisError(f"{p}: the table has no rows")
    check_columns(df, required, source=str(p))
    return df


def check_columns(df: pd.DataFrame, required: Iterable[str], source: str = "table") -> None:
    """Raise AnalysisError naming every column of `required` that `df` lacks, and the columns it has."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns))
        raise AnalysisError(f"{source}: missing column(s) {', '.join(missing)} (columns: {have})")


def write_quality_table(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> pd.DataFrame:
    """Write quality.parquet atomically: one row per configuration, the columns of `QUALITY_COLUMNS`.

    `rows` are mappings (e.g. from `quality.score_configuration`); absent known columns are null, extra
    columns (e.g. `prompt_set`) are kept after the known ones. `trial_id` must be present and unique.
    Returns the table written.
    """
    df = pd.DataFrame(list(rows))
    if "trial_id" not in df.columns:
        if not df.empty:
            raise ValueError("quality rows: every row needs a trial_id")
        df = pd.DataFrame(columns=list(QUALITY_COLUMNS))
    if df["trial_id"].isna().any():
        raise ValueError("quality rows: every row needs a trial_id")
    dup = df["trial_id"][df["trial_id"].duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"quality rows: trial_id repeated: {', '.join(map(str, dup[:5]))}")
    for col, dtype in QUALITY_COLUMNS.items():
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=dtype)
        else:
            df[col] = _as_dtype(df[col], dtype)
    extra = [c for c in df.columns if c not in QUALITY_COLUMNS]
    df = df[list(QUALITY_COLUMNS) + extra].reset_index(drop=True)
    atomic_write(Path(path), lambda f: df.to_parquet(f, index=False))
    return df


def read_quality_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read quality.parquet; the known columns get their dtypes, absent ones are added as null."""
    df = pd.read_parquet(path)
    check_columns(df, ["trial_id"], source=str(path))
    for col, dtype in QUALITY_COLUMNS.items():
        df[col] = _as_dtype(df[col], dtype) if col in df.columns else pd.Series([None] * len(df), dtype=dtype)
    return df


def _as_dtype(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == "string":
        return series.astype("string")
    try:
        return pd.to_numeric(series, errors="raise").astype(dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"quality column {series.name!r}: expected {dtype} values ({e})") from None


def iter_files(folder: Path, suffixes: Iterable[str]) -> Iterator[Path]:
    """Files under `folder` (recursively) with one of `suffixes`, in a stable (sorted) order."""
    wanted = {s.lower() for s in suffixes}
    yield from sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
