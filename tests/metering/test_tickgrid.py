"""The counter's tick grid: learnt from sharp updates, trusted only as far as its error bound says."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from t2a_ray.metering.tickgrid import TickGrid, first_midpoint_after

FIXTURE = Path(__file__).parent.parent / "fixtures" / "nvml_trace_h100.csv"


class Counter:
    """Ticks at phase + k·period; `read(t)` feeds what it sees to the grid, as the meter's sampler does."""

    def __init__(self, grid: TickGrid, period_s: float = 0.1003, phase_s: float = 0.0123):
        self.grid, self.period_s, self.phase_s = grid, period_s, phase_s
        self.last_read: tuple[float, int] | None = None
        self.reads = 0
        self.ticks_per_update: list[int] = []

    def ticks_by(self, t_s: float) -> int:
        return int((t_s - self.phase_s) // self.period_s)

    def read(self, t_s: float) -> None:
        self.reads += 1
        ticks = self.ticks_by(t_s)
        if self.last_read is not None and ticks != self.last_read[1]:
            self.ticks_per_update.append(ticks - self.last_read[1])
            self.grid.observe(self.last_read[0], t_s)
        self.last_read = (t_s, ticks)

    def read_densely(self, t0_s: float, t1_s: float, every_s: float = 0.005) -> float:
        t = t0_s
        while t < t1_s:
            self.read(t)
            t += every_s
        return t

    def read_as_planned(self, t0_s: float, t1_s: float) -> float:
        """Read as `next_read_s` plans, as the meter's sampler does inside a window."""
        t = t0_s
        while t < t1_s:
            self.read(t)
            planned = self.grid.next_read_s(t + 1e-4, 0.005)  # a read takes a moment
            t = t + 0.05 if planned is None else planned
        return t


def test_dense_reads_learn_the_period_within_the_bound_they_state():
    c = Counter(TickGrid(sharp_s=0.015))
    c.read_densely(0.0, 2.0)
    grid = c.grid
    assert abs(grid.period_s - c.period_s) <= grid.period_error_s
    for k in range(20, 200):  # the grid's bound holds for ticks far ahead
        true_tick = c.phase_s + k * c.period_s
        assert abs(grid.nearest_tick_s(true_tick) - true_tick) <= grid.error_s(true_tick)


def test_inside_a_window_one_read_per_tick_and_never_two_ticks_between_reads():
    c = Counter(TickGrid(sharp_s=0.015))
    t = c.read_densely(0.0, 0.35)  # what `Meter.start` waits for: three ticks
    reads_before, updates_before = c.reads, len(c.ticks_per_update)
    t = c.read_as_planned(t, t + 30.0)
    window_reads = c.reads - reads_before
    assert set(c.ticks_per_update[updates_before:]) == {1}  # no two ticks between two reads
    assert window_reads / 30.0 < 11.0  # ~one per tick (10/s), plus the few that tighten the grid
    t = c.read_densely(t, t + 0.3)  # the close of the window: the chain spans it
    assert c.grid.period_error_s < 1e-4
    assert abs(c.grid.period_s - c.period_s) <= c.grid.period_error_s


def test_reads_between_ticks_are_midway():
    assert first_midpoint_after(1.02, tick_s=0.0, period_s=0.1) == pytest.approx(1.05)
    assert first_midpoint_after(1.06, tick_s=0.0, period_s=0.1) == pytest.approx(1.15)
    assert first_midpoint_after(1.05, tick_s=0.0, period_s=0.1) == pytest.approx(1.15)  # strictly after


def test_a_sharp_update_off_the_grid_restarts_the_chain():
    c = Counter(TickGrid(sharp_s=0.015))
    c.read_densely(0.0, 1.0)
    assert c.grid.period_s is not None
    off = c.phase_s + 15 * c.period_s + 0.03  # a tick 30 ms off where the grid says
    c.grid.observe(off - 0.004, off + 0.001)
    assert c.grid.period_s is None and c.grid.next_read_s(off + 0.01, 0.005) is None


def test_wide_brackets_carry_no_timing_and_no_grid_means_no_plan():
    grid = TickGrid(sharp_s=0.015)
    assert grid.next_read_s(0.0, 0.005) is None
    for k in range(1, 10):
        grid.observe(k * 0.1 - 0.05, k * 0.1 + 0.001)  # 51 ms brackets: a plain 50 ms sampler's
    assert grid.period_s is None


def test_a_tick_that_does_not_come_when_watched_for_drops_the_grid():
    c = Counter(TickGrid(sharp_s=0.015))
    c.read_densely(0.0, 0.35)
    t, reads = 0.35, 0
    # Reads as planned that see nothing (the counter stopped): midway while the grid is sure, densely
    # once it has drifted — and when the tick it watches for has not come, no grid, no plan.
    while (planned := c.grid.next_read_s(t, 0.005)) is not None:
        t, reads = planned + 1e-4, reads + 1
        assert reads < 1000
    assert c.grid.period_s is None


def test_the_recorded_h100_trace_stays_on_one_grid():
    """Each sharp update of the real trace falls where the grid learnt from the ones before says."""
    rows = [r for r in csv.reader(line for line in FIXTURE.open() if not line.startswith("#"))][1:]
    times = [float(r[0]) for r in rows]
    energy = [r[1] for r in rows]
    grid = TickGrid(sharp_s=0.015)
    checked = 0
    for i in range(1, len(times)):
        if energy[i] != energy[i - 1]:
            mid, halfwidth = 0.5 * (times[i - 1] + times[i]), 0.5 * (times[i] - times[i - 1])
            if grid.period_s is not None and halfwidth * 2 <= grid.sharp_s:
                assert abs(grid.nearest_tick_s(mid) - mid) <= grid.error_s(mid) + halfwidth
                checked += 1
            grid.observe(times[i - 1], times[i])
    assert checked >= 20
    assert grid.period_s == pytest.approx(0.1, abs=0.001)
