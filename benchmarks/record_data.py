"""The committed data behind the records, read once per process (recompute.py reads a file many times)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"


@functools.cache
def rows(path: str) -> pd.DataFrame:
    """A run folder's results.parquet (path from the repository root)."""
    return pd.read_parquet(ROOT / path / "results.parquet")


@functools.cache
def bench_json(name: str) -> dict | list:
    """A benchmark's JSON under benchmarks/results."""
    return json.loads((RESULTS / name).read_text())


@functools.cache
def bench_csv(name: str) -> pd.DataFrame:
    """A benchmark's CSV under benchmarks/results."""
    return pd.read_csv(RESULTS / name)


@functools.cache
def record_text(record: str) -> str:
    return (ROOT / record).read_text()
