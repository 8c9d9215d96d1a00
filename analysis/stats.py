"""Small statistics shared by the fronts, the fits and the report: t-based 95 % confidence intervals.

Repeats of one configuration are few (the paper used 5), so the interval of a mean uses Student's t with
n − 1 degrees of freedom, not the normal 1.96: with 5 repeats the half-width is 2.78 s/√n, not 1.96 s/√n.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t quantile for `dof` degrees of freedom (NaN when dof < 1)."""
    if dof < 1:
        return math.nan
    return float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, dof))


def ci95_halfwidth(values: np.ndarray | pd.Series | list[float]) -> float:
    """Half-width of the t-based 95 % confidence interval of the mean of `values` (NaNs ignored).

    NaN with fewer than two finite values: one measurement says nothing about its own noise.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 2:
        return math.nan
    return t_quantile(n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)


def mean_ci(values: np.ndarray | pd.Series | list[float]) -> tuple[float, float, int]:
    """(mean, 95 % CI half-width, number of finite values) of `values`."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, 0
    return float(x.mean()), ci95_halfwidth(x), int(x.size)
