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
import pyarrow as pa

from t2a_ray.runfolder import atomic_write
from t2a_ray.schema import quality_schema


class AnalysisError(ValueError):
    """Input the analysis cannot use (a table, a column, an option, the report folder): one line, exit 2."""


# quality.parquet's columns and types: `t2a_ray.schema.QUALITY`, in pandas' nullable dtypes.
_PANDAS_DTYPES = {pa.float64(): "Float64", pa.int64(): "Int64", pa.string(): "string", pa.bool_(): "boolean"}
QUALITY_DTYPES: dict[str, str] = {f.name: _PANDAS_DTYPES.get(f.type, "object") for f in quality_schema()}
QUALITY_COLUMNS = tuple(QUALITY_DTYPES)


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

    `rows` are mappings (e.g. quality shards' rows); absent known columns are null, extra
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
    for col, dtype in QUALITY_DTYPES.items():
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=dtype)
        else:
            df[col] = _as_dtype(df[col], dtype)
    extra = [c for c in df.columns if c not in QUALITY_COLUMNS]
    df = df[list(QUALITY_COLUMNS) + extra].reset_index(drop=True)
    atomic_write(Path(path), lambda f: df.to_parquet(f, index=False))
    return df


def read_quality_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read quality.parquet; the schema's columns get their dtypes, absent ones are added as null."""
    df = pd.read_parquet(path)
    check_columns(df, ["trial_id"], source=str(path))
    for col, dtype in QUALITY_DTYPES.items():
        df[col] = _as_dtype(df[col], dtype) if col in df.columns else pd.Series([None] * len(df), dtype=dtype)
    return df


def _as_dtype(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == "object":  # lists (fad_inf_sizes) stay as they are
        return series
    if dtype == "string":
        return series.astype("string")
    if dtype == "boolean":
        return series.astype("boolean")
    try:
        return pd.to_numeric(series, errors="raise").astype(dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"quality column {series.name!r}: expected {dtype} values ({e})") from None


def iter_files(folder: Path, suffixes: Iterable[str]) -> Iterator[Path]:
    """Files under `folder` (recursively) with one of `suffixes`, in a stable (sorted) order."""
    wanted = {s.lower() for s in suffixes}
    yield from sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
