"""How late do the counter and the power sensor report? Fitted from a recording of known busy intervals.

Used by the benchmark on the GPU (to find out whether the counter lags the work it counts) and
by the replay test on the recorded H100 trace. The model is deliberately plain: the GPU draws one power
while idle and another while busy, and a sensor that lags by L reports at time t what was drawn at t − L.
The lag that best explains the readings (least squares over a grid of candidate lags) is the estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from t2a_ray.metering.timeline import CounterUpdate


def _overlap_s(a0: float, a1: float, intervals: Sequence[tuple[float, float]]) -> float:
    return sum(max(0.0, min(a1, b1) - max(a0, b0)) for b0, b1 in intervals)


def _lstsq2(x1: list[float], x2: list[float], y: list[float], intercept: bool) -> float:
    """Residual sum of squares of y ≈ a·x1 + b·x2 (x1 is the constant column when `intercept`)."""
    s11 = sum(a * a for a in x1)
    s22 = sum(b * b for b in x2)
    s12 = sum(a * b for a, b in zip(x1, x2, strict=True))
    s1y = sum(a * c for a, c in zip(x1, y, strict=True))
    s2y = sum(b * c for b, c in zip(x2, y, strict=True))
    det = s11 * s22 - s12 * s12
    if abs(det) < 1e-12:
        return float("inf")
    a = (s1y * s22 - s2y * s12) / det
    b = (s2y * s11 - s1y * s12) / det
    return sum((c - a * p - b * q) ** 2 for p, q, c in zip(x1, x2, y, strict=True))


def fit_counter_lag_s(
    updates: Sequence[CounterUpdate],
    busy_s: Sequence[tuple[float, float]],
    candidates_s: Sequence[float] = tuple(i * 0.002 for i in range(0, 151)),
) -> tuple[float, dict[float, float]]:
    """The counter lag L (s) that best explains each tick's increment as idle + busy energy drawn over
    [previous tick − L, tick − L]. Returns (best L, residual sum of squares per candidate)."""
    pairs = list(pairwise(updates))
    y = [b.energy_mj - a.energy_mj for a, b in pairs]
    rss: dict[float, float] = {}
    for lag in candidates_s:
        spans = [(a.time_s - lag, b.time_s - lag) for a, b in pairs]
        x1 = [b - a for a, b in spans]
        x2 = [_overlap_s(a, b, busy_s) for a, b in spans]
        rss[lag] = _lstsq2(x1, x2, y, intercept=False)
    return min(rss, key=rss.__getitem__), rss


def fit_power_delay_s(
    times_s: Sequence[float],
    power_mw: Sequence[float],
    busy_s: Sequence[tuple[float, float]],
    candidates_s: Sequence[float] = tuple(i * 0.002 for i in range(0, 251)),
) -> tuple[float, dict[float, float]]:
    """The delay D (s) that best explains power samples as idle/busy levels drawn at t − D."""
    ones = [1.0] * len(times_s)
    y = [float(p) for p in power_mw]
    rss: dict[float, float] = {}
    for delay in candidates_s:
        busy = [1.0 if any(b0 <= t - delay < b1 for b0, b1 in busy_s) else 0.0 for t in times_s]
        rss[delay] = _lstsq2(ones, busy, y, intercept=True)
    return min(rss, key=rss.__getitem__), rss
