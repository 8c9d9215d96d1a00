"""How the analysis orders and prints one value: in labels, tables, plots and fronts.csv alike."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def is_missing(v: object) -> bool:
    """None, pandas' NA or a float NaN."""
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v))


def sort_key(v: object) -> tuple[int, float, str]:
    """Numbers first in numeric order (10 before 100), then text, then missing values; bools as text."""
    if is_missing(v):
        return (2, 0.0, "")
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def fmt(v: object, na: str = "–") -> str:
    """A value as the analysis prints it: whole floats without ``.0``, others to 4 significant digits."""
    if is_missing(v):
        return na
    if isinstance(v, (float, np.floating)):
        whole = float(v).is_integer() and abs(v) < 1e15
        return str(int(v)) if whole else f"{float(v):.4g}"
    return str(v)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 configuration``, ``2 configurations``."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
