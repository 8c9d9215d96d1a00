"""Placing a window on the energy counter's timeline: pure arithmetic over recorded samples.

Why this exists. NVML's total-energy counter is exact in what it adds up but coarse in time: it changes
only every ~100 ms (the "tick"). Reading it at a window's two ends, as CodeCarbon and Zeus do, is off by
whatever the GPU spent between the last tick and the end (up to a tick's worth of energy at each end,
70 J at 700 W) — the 9–14 % scatter seen on the H100. Sampled every few ms, the counter instead gives a
list of *updates*: the time each new value appeared (bracketed by the last sample with the old value and
the first with the new) and the value. Each value is the energy up to its update time, minus the
counter's lag, if it has one. A window's energy is then the cumulative energy F(t) at its end minus
F(t) at its start, F interpolated between the updates that bracket each boundary:

* ``step`` (default): a boundary of a window or phase is where the GPU's power *steps* (the meter
  synchronises the device there: idle → busy at a start, busy → idle at an end). Within the tick that
  holds the boundary, the energy before it is drawn at the power of the tick before, the energy after
  it at the power of the tick after, in the proportion that reproduces the tick's total exactly:
  ``F(t) = C_k + ΔC_k · P_before·x / (P_before·x + P_after·(T − x))``, x = t − c_k. Where the two
  neighbours draw the same power this is the linear rule; across a step it puts the tick's energy on
  the right side of the boundary. It needs the tick after the boundary's tick, so a window's close
  waits for one more tick (~0.1 s).
* ``linear``: energy spread evenly over the tick. Exact while the power is steady, but across a step
  it moves energy over the boundary: −(P_busy − P_idle)·T/6 on average at each end of a window
  (−10 J per end at a 600 W step; −2 % on 1.2 s matmul windows, measured on the H100).

Power samples do not help inside a tick on the H100: its "instantaneous" power (NVML field 186) also
changes only every ~100 ms and trails the work by ~0.1 s (measured), so they serve as the second,
independent reading of a window (`PowerTrace`) and as the fallback where the counter is missing.

Everything here is a function of samples alone, so it runs the same on CI (fakes), on a replayed NVML
trace and on the GPU.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

INTERPOLATIONS = ("step", "linear")

#: How far a tick may stray from a perfect grid (the H100's residuals are mostly the width of the
#: brackets that locate them: benchmarks/results/meter_precision_h100.md).
TICK_JITTER_S = 0.002


@dataclass(frozen=True)
class CounterUpdate:
    """A new counter value: first seen at `seen_s`, the old one last seen at `before_s`."""

    before_s: float
    seen_s: float
    energy_mj: float

    @property
    def time_s(self) -> float:
        """Best single estimate of when the driver published the value: the bracket's midpoint."""
        return 0.5 * (self.before_s + self.seen_s)


def counter_updates(times_s: Sequence[float], energy_mj: Sequence[float | None]) -> list[CounterUpdate]:
    """The updates visible in a sample stream (None samples — failed reads — are skipped).

    The first value in the stream has no known update time and is not an update.
    """
    updates: list[CounterUpdate] = []
    last_t: float | None = None
    last_e: float | None = None
    for t, e in zip(times_s, energy_mj, strict=True):
        if e is None:
            continue
        if last_e is not None and e != last_e:
            updates.append(CounterUpdate(last_t, t, float(e)))  # type: ignore[arg-type]
        last_t, last_e = t, e
    return updates


def refine_update_times(
    updates: Sequence[CounterUpdate], jitter_s: float = TICK_JITTER_S
) -> list[CounterUpdate]:
    """Narrow each update's bracket with its neighbours', using the counter's regular period.

    Inside a window the sampler reads sparsely (a read costs milliseconds of driver time), so an update seen
    there is bracketed only to the time between two reads (a tick, at one read per tick); the updates around
    it, seen while the meter waits at a boundary, are bracketed to ~5 ms. Ticks come every T (= the median
    gap) give or take `jitter_s`, so update k lies within [lo_j + (k−j)·T − jitter, hi_j + (k−j)·T + jitter]
    of a neighbour j one tick away; intersecting these, forward and back, carries the sharp brackets inwards.
    A constraint that would empty a bracket (a missed tick, an irregular counter) is ignored.
    """
    period = update_period_s(updates)
    if period is None or len(updates) < 3:
        return list(updates)
    lo = [u.before_s for u in updates]
    hi = [u.seen_s for u in updates]
    n = len(updates)
    for _ in range(2):
        for i in list(range(1, n)) + list(range(n - 2, -1, -1)):
            for j in (i - 1, i + 1):
                if not 0 <= j < n:
                    continue
                ticks = round(((lo[i] + hi[i]) - (lo[j] + hi[j])) / (2 * period))
                if ticks not in (-1, 1):
                    continue
                new_lo = max(lo[i], lo[j] + ticks * period - jitter_s)
                new_hi = min(hi[i], hi[j] + ticks * period + jitter_s)
                if new_lo <= new_hi:
                    lo[i], hi[i] = new_lo, new_hi
    return [CounterUpdate(a, b, u.energy_mj) for a, b, u in zip(lo, hi, updates, strict=True)]


def update_period_s(updates: Sequence[CounterUpdate]) -> float | None:
    """The counter's update period: the median gap between consecutive updates (None if < 2 updates)."""
    if len(updates) < 2:
        return None
    return statistics.median(b.time_s - a.time_s for a, b in pairwise(updates))


class PowerTrace:
    """Power samples as a piecewise-linear function of time; `delay_s` shifts them back to when the
    power was drawn (a sensor that reports late)."""

    def __init__(self, times_s: Sequence[float], power_mw: Sequence[float | None], delay_s: float = 0.0):
        pairs = [(t - delay_s, float(p)) for t, p in zip(times_s, power_mw, strict=True) if p is not None]
        self.times_s = [t for t, _ in pairs]
        self.power_mw = [p for _, p in pairs]
        # cumulative trapezoid integral at each sample, in mJ (mW × s)
        self._cum_mj = [0.0]
        for i in range(1, len(pairs)):
            dt = self.times_s[i] - self.times_s[i - 1]
            self._cum_mj.append(self._cum_mj[-1] + 0.5 * (self.power_mw[i] + self.power_mw[i - 1]) * dt)

    def covers(self, t0_s: float, t1_s: float) -> bool:
        return len(self.times_s) >= 2 and self.times_s[0] <= t0_s and t1_s <= self.times_s[-1]

    def cumulative_mj(self, t_s: float) -> float:
        """∫ power from the first sample to `t_s` (clamped to the covered span)."""
        ts = self.times_s
        if len(ts) < 2 or t_s <= ts[0]:
            return 0.0
        if t_s >= ts[-1]:
            return self._cum_mj[-1]
        i = bisect.bisect_right(ts, t_s) - 1
        dt = t_s - ts[i]
        slope = (self.power_mw[i + 1] - self.power_mw[i]) / (ts[i + 1] - ts[i])
        return self._cum_mj[i] + dt * (self.power_mw[i] + 0.5 * slope * dt)

    def integral_mj(self, t0_s: float, t1_s: float) -> float:
        return self.cumulative_mj(t1_s) - self.cumulative_mj(t0_s)


class CounterTimeline:
    """Cumulative energy F(t) in mJ from counter updates, valid between the first and last update.

    `lag_s`: the value published at time u covers energy drawn up to u − lag_s. `interpolation`: how
    energy is placed within a tick (module docstring). `refine`: sharpen update times with the counter's
    regular period (`refine_update_times`).
    """

    def __init__(
        self,
        updates: Sequence[CounterUpdate],
        lag_s: float = 0.0,
        interpolation: str = "step",
        refine: bool = True,
    ):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation = {interpolation!r}: must be one of {INTERPOLATIONS}")
        if refine:
            updates = refine_update_times(updates)
        self.covered_s = [u.time_s - lag_s for u in updates]
        self.energy_mj = [u.energy_mj for u in updates]
        self.interpolation = interpolation
        self.period_s = update_period_s(updates)

    def covers(self, t_s: float) -> bool:
        """Whether F(t_s) can be had (by the linear rule at least)."""
        return len(self.covered_s) >= 2 and self.covered_s[0] <= t_s <= self.covered_s[-1]

    def covers_with_neighbours(self, t_s: float) -> bool:
        """Whether the ticks on both sides of t_s's tick are known too (what `step` needs)."""
        cs = self.covered_s
        return len(cs) >= 4 and cs[1] <= t_s < cs[-2]

    def energy_mj_at(self, t_s: float) -> float:
        """F(t_s). Raises ValueError outside the covered span (the caller waits or falls back).

        `step` falls back to the linear rule where a neighbouring tick is missing.
        """
        if not self.covers(t_s):
            raise ValueError(f"t = {t_s} is outside the counter's covered span")
        cs, es = self.covered_s, self.energy_mj
        k = min(bisect.bisect_right(cs, t_s) - 1, len(cs) - 2)
        span, step = cs[k + 1] - cs[k], es[k + 1] - es[k]
        x = t_s - cs[k]
        if span <= 0:
            return es[k + 1]
        fraction = x / span
        if self.interpolation == "step" and 1 <= k <= len(cs) - 3:
            before_w = (es[k] - es[k - 1]) / (cs[k] - cs[k - 1])
            after_w = (es[k + 2] - es[k + 1]) / (cs[k + 2] - cs[k + 1])
            weighted = before_w * x + after_w * (span - x)
            if before_w >= 0 and after_w >= 0 and weighted > 0:
                fraction = before_w * x / weighted
        return es[k] + step * fraction
