"""Tables as the field writes them, made into one results table for `analyze --results`.

Several files (and globs) are concatenated; CodeCarbon's `emissions.csv` is recognised by its header;
`--extract` parses configuration columns out of a text column; `--join` brings in another table's columns
(e.g. quality scores kept apart; globs, files of one schema stacked); the energy column is converted to joules
once, here, so that everything after this module speaks J.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from t2a_ray.analysis.tables import AnalysisError, check_columns, load_table
from t2a_ray.units import JOULES_PER, unit_from_suffix

# CodeCarbon's emissions.csv (2.x; 3.x adds columns): these columns recognise it. Energies are kWh,
# `duration` is seconds, `emissions` kg CO2e.
CODECARBON_HEADER = (
    "timestamp",
    "project_name",
    "run_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "codecarbon_version",
)
CODECARBON_KWH = ("cpu_energy", "gpu_energy", "ram_energy", "energy_consumed")
#: The only CodeCarbon columns that can name a configuration; the others are readings or bookkeeping.
CODECARBON_KEYS = ("project_name", "experiment_id")
#: The per-row carbon intensity a table brings with it (CodeCarbon's own), g CO2e/kWh.
INTENSITY_COL = "carbon_intensity_g_per_kwh"


@dataclass
class FieldTable:
    """One results table read from the field's files, and what the analysis must know about it."""

    frame: pd.DataFrame
    sources: list[Path]
    #: Columns that are never part of a configuration (a recognised format's readings, parsed columns).
    not_keys: set[str] = field(default_factory=set)
    #: Energy units the format states, by column.
    units: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def expand(patterns: Iterable[str | Path], option: str = "--results") -> list[Path]:
    """Files named by `patterns` (paths or globs), each once, in the order given (a glob's sorted)."""
    out: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise AnalysisError(f"{option} {text}: matches no file")
            out += [Path(m) for m in matches]
        else:
            out.append(Path(text))
    return list(dict.fromkeys(out))


def read_tables(patterns: Iterable[str | Path]) -> FieldTable:
    """Read and concatenate every table; CodeCarbon files get their units, intensity and key roles."""
    paths = expand(patterns)
    if not paths:
        raise AnalysisError("--results: no table given")
    frames, table = [], FieldTable(pd.DataFrame(), paths)
    codecarbon = 0
    for path in paths:
        df = load_table(path)
        if is_codecarbon(df):
            codecarbon += 1
            df = _codecarbon_rows(df)
            table.not_keys |= {c for c in df.columns if c not in CODECARBON_KEYS}
            table.units |= dict.fromkeys(CODECARBON_KWH, "kwh")
        frames.append(df)
    table.frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if codecarbon:
        table.notes.append(
            f"{codecarbon} of {len(paths)} file(s) read as CodeCarbon emissions.csv: energies in kWh, "
            "carbon at each row's own intensity (emissions / energy_consumed) unless --carbon-intensity."
        )
    return table


def is_codecarbon(df: pd.DataFrame) -> bool:
    """True for a table with CodeCarbon's emissions.csv header."""
    return all(c in df.columns for c in CODECARBON_HEADER)


def _codecarbon_rows(df: pd.DataFrame) -> pd.DataFrame:
    kwh = pd.to_numeric(df["energy_consumed"], errors="coerce")
    kg = pd.to_numeric(df["emissions"], errors="coerce")
    intensity = (kg * 1000.0 / kwh).where(kwh > 0)
    return df.assign(**{INTENSITY_COL: intensity})


def parse_extract(spec: str) -> tuple[str, re.Pattern]:
    """``COL=REGEX`` (REGEX with named groups) → (COL, compiled REGEX); AnalysisError otherwise."""
    col, sep, regex = spec.partition("=")
    if not sep or not col or not regex:
        raise AnalysisError(
            f"--extract {spec!r}: write COL=REGEX, e.g. 'project_name=^(?P<model>.*)-(?P<steps>\\d+)$'"
        )
    try:
        pattern = re.compile(regex)
    except re.error as e:
        raise AnalysisError(f"--extract {spec!r}: not a regular expression ({e})") from None
    if not pattern.groupindex:
        raise AnalysisError(f"--extract {spec!r}: the regex has no named group such as (?P<steps>\\d+)")
    return col, pattern


def extract(table: FieldTable, col: str, pattern: re.Pattern) -> None:
    """Add one column per named group of `pattern`, matched against `col` (numbers where all parse).

    The source column is then no longer a configuration key: the parsed columns stand for it.
    """
    df = table.frame
    check_columns(df, [col], source="--extract")
    parts = df[col].astype("string").str.extract(pattern)
    unmatched = int(parts.isna().all(axis=1).sum())
    if unmatched == len(df):
        raise AnalysisError(
            f"--extract {col}: the regex matches none of its values (e.g. {df[col].iloc[0]!r})"
        )
    for name in pattern.groupindex:
        numbers = pd.to_numeric(parts[name], errors="coerce")
        table.frame[name] = numbers if numbers.notna().sum() == parts[name].notna().sum() else parts[name]
    table.not_keys.add(col)
    table.not_keys -= set(pattern.groupindex)
    if unmatched:
        table.notes.append(
            f"--extract {col}: {unmatched} row(s) did not match; their parsed columns are empty."
        )


def join_all(table: FieldTable, patterns: Sequence[str | Path], ons: Sequence[Sequence[str]]) -> None:
    """Bring in the columns of the `--join` tables: `patterns[i]` (paths or globs) on the key columns
    `ons[i]`. Files of one schema (the same columns, the same keys) are stacked into one table first,
    across `--join`s too — seven score files of one layout are one table, never seven sets of columns."""
    stacks: dict[tuple, tuple[list[Path], list[pd.DataFrame], tuple[str, ...]]] = {}
    for pattern, on in zip(patterns, ons, strict=True):
        for path in expand([pattern], option="--join"):
            df = load_table(path)
            schema = (tuple(sorted(map(str, df.columns))), tuple(on))
            paths, frames, _ = stacks.setdefault(schema, ([], [], tuple(on)))
            if path not in paths:
                paths.append(path)
                frames.append(df)
    for paths, frames, on in stacks.values():
        stacked = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        name = paths[0].name + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        join(table, stacked, list(on), name)
        if len(paths) > 1:
            table.notes.append(f"--join: {len(paths)} files of one schema stacked ({name}).")


def join(table: FieldTable, other: pd.DataFrame, on: Sequence[str], name: str) -> None:
    """Left-join `other`'s columns on the columns `on` (each of its keys must be unique). A column the
    results already have is taken only where it agrees with them: a value that differs is an error."""
    check_columns(table.frame, on, source="--on (results)")
    check_columns(other, on, source=f"--on ({name})")
    other = other.drop_duplicates()  # the same row in two stacked files is one row
    dup = int(other.duplicated(list(on)).sum())
    if dup:
        raise AnalysisError(f"--join {name}: {dup} row(s) repeat a key of --on {','.join(on)}")
    # Key columns parsed as numbers on one side and text on the other would never match.
    for c in on:
        if table.frame[c].dtype != other[c].dtype:
            table.frame[c], other[c] = table.frame[c].astype("string"), other[c].astype("string")
    clash = [c for c in other.columns if c in table.frame.columns and c not in on]
    merged = table.frame.merge(other, on=list(on), how="left", suffixes=("", "\x00joined"))
    for c in clash:
        ours, theirs = merged[c], merged[f"{c}\x00joined"]
        both = ours.notna() & theirs.notna()
        differ = both & ~_same(ours, theirs)
        if differ.any():
            i = differ.idxmax()
            there, here = (v.item() if hasattr(v, "item") else v for v in (ours[i], theirs[i]))
            raise AnalysisError(
                f"--join {name}: column {c} is also in the results and differs "
                f"({there!r} there, {here!r} here, {int(differ.sum())} row(s)); rename or drop it"
            )
        merged[c] = ours.where(ours.notna(), theirs)
        merged = merged.drop(columns=f"{c}\x00joined")
    table.frame = merged


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality of two columns, as numbers where both are numbers, else as text."""
    na, nb = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    numeric = na.notna() & nb.notna()
    return (numeric & (na == nb)) | (~numeric & (a.astype("string") == b.astype("string")).fillna(False))


def energy_in_joules(
    df: pd.DataFrame, col: str, unit: str | None, stated: dict[str, str]
) -> tuple[pd.DataFrame, str, list[str]]:
    """The energy column converted to J: the unit is `unit`, else the name's suffix, else `stated`.

    Returns the table with the J column (``<name without unit>_j`` when converted), its name and notes.
    A column without a known unit is taken as joules, and a note says so.
    """
    numeric_column(df, col, "--energy")
    unit = unit or unit_from_suffix(col) or stated.get(col)
    if unit is None:
        return df, col, [f"{col} has no unit in its name: taken as joules (say --energy-unit j|wh|kwh)."]
    if unit not in JOULES_PER:
        raise AnalysisError(f"--energy-unit {unit!r}: must be one of {', '.join(JOULES_PER)}")
    if unit == "j":
        return df, col, []
    suffix = f"_{unit}"
    base = col[: -len(suffix)] if col.lower().endswith(suffix) else col
    name = f"{base}_j" if f"{base}_j" not in df.columns else f"{col}_j"
    converted = pd.to_numeric(df[col], errors="coerce") * JOULES_PER[unit]
    return df.assign(**{name: converted}), name, [f"{col} is in {unit}: converted to J as {name}."]


def numeric_column(df: pd.DataFrame, col: str, option: str) -> pd.Series:
    """`df[col]` as floats; AnalysisError naming the column and a sample when a value is not a number."""
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() & df[col].notna()
    if bad.any():
        sample = df[col][bad].iloc[0]
        raise AnalysisError(
            f"{option} {col}: {int(bad.sum())} value(s) are not numbers (e.g. {sample!r}); "
            "name a numeric column"
        )
    return values.astype("float64")
