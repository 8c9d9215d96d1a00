"""The arithmetic of placing a window on the counter's timeline (no devices, no time passing)."""

from __future__ import annotations

import pytest

from t2a_ray.metering.calibration import fit_counter_lag_s, fit_power_delay_s
from t2a_ray.metering.timeline import (
    CounterTimeline,
    CounterUpdate,
    PowerTrace,
    counter_updates,
    refine_update_times,
    update_period_s,
)


def test_updates_are_value_changes_bracketed_by_samples_and_skip_failed_reads():
    times = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
    energy = [5, 5, None, 9, 9, 12]
    ups = counter_updates(times, energy)
    assert ups == [CounterUpdate(0.01, 0.03, 9.0), CounterUpdate(0.04, 0.05, 12.0)]
    assert ups[0].time_s == pytest.approx(0.02)
    assert counter_updates([0.0], [1]) == []  # the first value has no known update time


def test_update_period_is_the_median_gap():
    ups = [CounterUpdate(t - 0.002, t + 0.002, i) for i, t in enumerate([0.1, 0.2, 0.3, 0.45, 0.55])]
    assert update_period_s(ups) == pytest.approx(0.1)
    assert update_period_s(ups[:1]) is None


def _ticks(power_w, t_end=2.0, tick_s=0.1, phase_s=0.037, half_bracket_s=0.0):
    """Exact counter updates (mJ) of a power profile power_w(t), ticking at phase + k·tick."""
    ups, k, energy_j, t_prev = [], 0, 0.0, 0.0
    dt = 1e-4
    t = phase_s
    while t < t_end:
        while t_prev < t - 1e-12:
            energy_j += power_w(t_prev + dt / 2) * dt
            t_prev += dt
        ups.append(CounterUpdate(t - half_bracket_s, t + half_bracket_s, energy_j * 1000))
        k += 1
        t = phase_s + k * tick_s
    return ups


def _energy_j(power_w, a, b, dt=1e-5):
    n = round((b - a) / dt)
    return sum(power_w(a + (i + 0.5) * dt) for i in range(n)) * dt


def test_linear_is_exact_under_steady_power():
    ups = _ticks(lambda t: 300.0)
    tl = CounterTimeline(ups, interpolation="linear")
    assert (tl.energy_mj_at(1.234) - tl.energy_mj_at(0.511)) * 1e-3 == pytest.approx(300 * 0.723, rel=1e-3)


@pytest.mark.parametrize("start, end", [(0.52, 1.31), (0.55, 1.349), (0.501, 1.2999)])
def test_step_puts_a_ticks_energy_on_the_right_side_of_a_power_step(start, end):
    def power(t):
        return 650.0 if start <= t < end else 70.0

    ups = _ticks(power)
    truth = _energy_j(power, start, end)
    step = CounterTimeline(ups, interpolation="step")
    linear = CounterTimeline(ups, interpolation="linear")
    got_step = (step.energy_mj_at(end) - step.energy_mj_at(start)) * 1e-3
    got_linear = (linear.energy_mj_at(end) - linear.energy_mj_at(start)) * 1e-3
    assert got_step == pytest.approx(truth, rel=2e-3)
    # why `step` is the default: the linear rule leaks busy energy out of the window at both ends
    assert got_linear < truth * 0.99 or abs(got_linear - truth) < 0.5


def test_lag_shifts_the_timeline():
    ups = [CounterUpdate(t, t, e) for t, e in [(0.1, 0.0), (0.2, 100.0), (0.3, 200.0)]]
    tl = CounterTimeline(ups, lag_s=0.05, interpolation="linear")
    assert tl.covered_s == pytest.approx([0.05, 0.15, 0.25])
    assert tl.energy_mj_at(0.1) == pytest.approx(50.0)


def test_coverage_and_errors():
    ups = _ticks(lambda t: 100.0, t_end=0.6)  # ticks at 0.037 … 0.537
    tl = CounterTimeline(ups)
    assert tl.covers(0.05) and not tl.covers(0.01) and not tl.covers(0.6)
    assert not tl.covers_with_neighbours(0.05)  # no tick before the first one
    assert tl.covers_with_neighbours(0.2)
    assert not tl.covers_with_neighbours(0.45)  # needs the tick after 0.537
    with pytest.raises(ValueError, match="outside the counter's covered span"):
        tl.energy_mj_at(0.7)
    # step falls back to linear where a neighbour is missing
    assert tl.energy_mj_at(0.5) == pytest.approx(
        CounterTimeline(ups, interpolation="linear").energy_mj_at(0.5)
    )
    with pytest.raises(ValueError, match="interpolation = 'cubic'"):
        CounterTimeline(ups, interpolation="cubic")


def test_refinement_carries_sharp_brackets_into_sparse_ones():
    # ticks every 0.1 s; the middle one seen only within a 20 ms bracket, its neighbours within 2 ms
    ups = [
        CounterUpdate(0.099, 0.101, 1.0),
        CounterUpdate(0.185, 0.205, 2.0),
        CounterUpdate(0.299, 0.301, 3.0),
    ]
    mid = refine_update_times(ups, jitter_s=0.001)[1]
    assert mid.seen_s - mid.before_s <= 0.004 + 1e-9
    assert mid.time_s == pytest.approx(0.2, abs=0.002)
    # an inconsistent neighbour (a missed tick) is ignored rather than emptying the bracket
    odd = [
        CounterUpdate(0.099, 0.101, 1.0),
        CounterUpdate(0.250, 0.252, 2.0),
        CounterUpdate(0.299, 0.301, 3.0),
    ]
    out = refine_update_times(odd, jitter_s=0.001)
    assert all(u.before_s <= u.seen_s for u in out)


def test_power_trace_integrates_trapezoids_and_shifts_by_its_delay():
    p = PowerTrace([0.0, 1.0, 2.0], [100_000, 200_000, 200_000])  # mW
    assert p.integral_mj(0.0, 2.0) * 1e-3 == pytest.approx(350.0)
    assert p.integral_mj(0.5, 1.0) * 1e-3 == pytest.approx(0.5 * (150 + 200) / 2)
    assert p.covers(0.0, 2.0) and not p.covers(-0.1, 1.0)
    late = PowerTrace([0.1, 1.1, 2.1], [100_000, 200_000, 200_000], delay_s=0.1)
    assert late.integral_mj(0.0, 2.0) == pytest.approx(p.integral_mj(0.0, 2.0))
    skipped = PowerTrace([0.0, 1.0, 2.0], [100_000, None, 100_000])
    assert skipped.integral_mj(0.0, 2.0) * 1e-3 == pytest.approx(200.0)


def test_lag_fits_recover_a_known_lag():
    busy = [(0.33, 0.81), (1.27, 1.66), (2.13, 2.52)]

    def power(t):
        return 650.0 if any(a <= t < b for a, b in busy) else 70.0

    lagged = [
        CounterUpdate(u.before_s + 0.03, u.seen_s + 0.03, u.energy_mj) for u in _ticks(power, t_end=3.0)
    ]
    lag, rss = fit_counter_lag_s(lagged, busy)
    assert lag == pytest.approx(0.03, abs=0.0021)
    assert rss[lag] < rss[0.0]
    times = [i * 0.005 for i in range(600)]
    delay, _ = fit_power_delay_s(times, [power(t - 0.1) * 1000 for t in times], busy)
    assert delay == pytest.approx(0.1, abs=0.006)
