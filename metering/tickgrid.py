"""Where the energy counter's next tick will fall, so the sampler can read it once per tick inside windows.

Why. On the H100 one read of the energy counter costs ~2.4 ms of busy driver time, and launch-bound work
slows by ~0.13 % per 10 reads a second, whichever process reads (benchmarks/results/meter_precision_h100.md).
A window's energy needs every tick inside it (`timeline.py` places the boundaries between the ticks
around them), so the fewest reads that keep the precision are one per tick. Read blindly every 100 ms,
the reads drift onto the ticks and now and then two ticks fall between two reads (up to 1.35 % error in
the replay); read midway between ticks, every read sees exactly one new tick.

How. The counter ticks on a steady grid (H100: 0.1000015 s, within a few ms over 200 s; measured). Each
update seen by dense sampling is "sharp": bracketed to a few ms. `TickGrid` chains sharp updates: the
ticks between two of them are counted by rounding their distance over the period known so far — only
where that count cannot be wrong (the predicted position is uncertain by less than a quarter period) —
so the period is known to (bracket widths) / (ticks spanned), and gets sharper the longer the chain.
An update that contradicts the grid restarts the chain; the sampler then reads at its plain interval.
"""

from __future__ import annotations

import math

from t2a_ray.metering.timeline import TICK_JITTER_S


class TickGrid:
    """The counter's ticks as a grid ``t_ref + k·period``, learnt from the updates the sampler sees.

    `sharp_s`: the widest bracket (time between the read before an update and the read that saw it)
    that still locates a tick.
    """

    def __init__(self, sharp_s: float):
        self.sharp_s = sharp_s
        self._ref_s: float | None = None  # the chain's oldest sharp update (bracket midpoint), half-width
        self._ref_halfwidth_s = 0.0
        self._last_s: float | None = None  # its newest sharp update
        self._last_halfwidth_s = 0.0
        self._ticks = 0  # ticks from _ref_s to _last_s
        self._last_was_sharp = False  # whether the update just before the next one was the chain's last
        self._latest_s: float | None = None  # the newest update of any width (bracket midpoint)

    @property
    def period_s(self) -> float | None:
        return (self._last_s - self._ref_s) / self._ticks if self._ticks else None  # type: ignore[operator]

    @property
    def period_error_s(self) -> float | None:
        """A bound on the period's error: both ends' half-widths and jitter, spread over the chain."""
        if not self._ticks:
            return None
        return (self._ref_halfwidth_s + self._last_halfwidth_s + 2 * TICK_JITTER_S) / self._ticks

    def error_s(self, t_s: float) -> float | None:
        """How far the real tick nearest `t_s` may be from the grid's (None: no grid yet)."""
        period, period_error = self.period_s, self.period_error_s
        if period is None or period_error is None or self._last_s is None:
            return None
        return self._last_halfwidth_s + TICK_JITTER_S + abs(t_s - self._last_s) / period * period_error

    def nearest_tick_s(self, t_s: float) -> float | None:
        period = self.period_s
        if period is None or self._last_s is None:
            return None
        return self._last_s + round((t_s - self._last_s) / period) * period

    def observe(self, before_s: float, seen_s: float) -> None:
        """A new counter value, first seen at `seen_s`; the old one was last seen at `before_s`."""
        halfwidth = 0.5 * (seen_s - before_s)
        self._latest_s = 0.5 * (before_s + seen_s)
        if seen_s - before_s > self.sharp_s:
            self._last_was_sharp = False
            return
        t_s = self._latest_s
        ticks = self._ticks_since_last(t_s, halfwidth)
        if ticks is None:  # no chain yet, or this update contradicts it: start again from here
            self._ref_s, self._ref_halfwidth_s, self._ticks = t_s, halfwidth, 0
        else:
            self._ticks += ticks
        self._last_s, self._last_halfwidth_s, self._last_was_sharp = t_s, halfwidth, True

    def _ticks_since_last(self, t_s: float, halfwidth_s: float) -> int | None:
        """Ticks between the chain's newest sharp update and one at `t_s`, or None if not certain."""
        if self._last_s is None:
            return None
        period = self.period_s
        if period is None:
            # Two sharp updates in a row, no period yet: dense reads see every tick, so they are one
            # tick apart (checked against the period from the next link on).
            return 1 if self._last_was_sharp else None
        error = self.error_s(t_s) + halfwidth_s  # type: ignore[operator]
        ticks = round((t_s - self._last_s) / period)
        if ticks < 1 or error >= period / 4 or abs(t_s - (self._last_s + ticks * period)) > error:
            return None
        return ticks

    def next_read_s(self, now_s: float, dense_s: float) -> float | None:
        """When to read next inside a window (None: no grid, or one the last tick contradicted).

        While the grid is known to within an eighth of a period: the first midpoint between two ticks
        after `now_s` — one read per tick, each far from both ticks. Once it has drifted further (it
        drifts by the period's error every tick): every `dense_s` from the earliest the next unseen
        tick can come, to see that tick sharply, which tightens the grid again.
        """
        period, error = self.period_s, self.error_s(now_s)
        if period is None or error is None or error >= period / 4:
            return None
        if error < period / 8:
            return first_midpoint_after(now_s, self._last_s, period)  # type: ignore[arg-type]
        upcoming = self.nearest_tick_s(self._latest_s) + period  # type: ignore[arg-type,operator]
        upcoming_error = self.error_s(upcoming)
        if now_s > upcoming + upcoming_error:  # type: ignore[operator]
            self._restart()  # the tick did not come when the grid said: the counter is not on it
            return None
        return max(now_s + dense_s, upcoming - upcoming_error)  # type: ignore[operator]

    def _restart(self) -> None:
        self._ref_s = self._last_s = None
        self._ticks = 0
        self._last_was_sharp = False


def first_midpoint_after(t_s: float, tick_s: float, period_s: float) -> float:
    """The first time midway between two ticks of the grid through `tick_s`, after `t_s`."""
    midpoint = tick_s + (math.floor((t_s - tick_s) / period_s - 0.5) + 1.5) * period_s
    return midpoint if midpoint > t_s else midpoint + period_s  # t_s on a midpoint, rounded below it
