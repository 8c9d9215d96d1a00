"""`t2a-ray doctor`: can the meter be trusted on this card? Checks as pure functions of a GPU and a clock.

The meter rests on assumptions about the card that a user on other hardware cannot see: that the energy
counter exists and moves on a steady grid, that it counts *all* the work (NVML's power readings on
A100/H100 average only 25 ms of every 100 ms — Yang et al., "Part-time Power Measurements", SC'24),
that reading it is cheap, and that the card is not throttling. Each check below measures one of them
and says pass / warn / fail, with its figure and, where it does not pass, what to do.

The GPU work is injected: `busy(seconds)` runs a burst of work on the device for about that long and
returns when the device has finished it (on a GPU: calibrated matmuls and a synchronise; on a
`FakeGPU`: its power set for that long). So a fake's power follows the checks' square wave, and the
same functions run on CI and on the card. Samples are taken by the clock's periodic task, as the
meter's are (`Clock.start_periodic`; under a `FakeClock` it runs while someone sleeps).

Checks (numbered as in the record):

1. the counter: present, advancing, its update period and regularity (`check_counter`);
2. coverage (`check_coverage`): a 25 %-duty square wave phase-locked to the counter's ticks at ≥ 8
   offsets within a tick, repeated. A counter that sees all work gives the same busy energy per period
   (over idle) at every offset; a part-time one swings from ~0 (bursts in its blind part) to ~4× (bursts
   in the part it scales up). The statistic is an equivalence test (`coverage_stats`): offset k's
   *coverage* is its mean busy energy over the mean of the K offsets' means, with a 95 % CI from the
   repeats' spread — the pooled within-offset variance (one-way ANOVA's residual, N − K degrees of
   freedom, so two repeats per offset still give a CI), propagated to the offset's difference from the
   mean of means, t quantile. It fails when some offset's CI lies wholly outside 1 ± T
   (`COVERAGE_TOLERANCE`): the busy energy depends on the phase by more than T, beyond the repeats'
   spread. It warns when a point estimate lies outside but its CI reaches in (undecided: more repeats
   decide), and passes otherwise, naming the largest effect with its CI and the ANOVA p across offsets,
   so that a real but small phase effect is shown, not hidden (`benchmarks/results/doctor_h200.md`). A
   significance test alone would not do: it flags any effect, however small, once the repeats agree;
3. the counter against integrated power on a steady load (`check_power_agreement`);
4. the cost of one counter read, the meter's reads per second of window and its fixed cost per window
   (time to open and to close, outside the work) (`check_meter_cost`);
5. the meter's precision: CV of repeated fixed-work windows, naive endpoint reads beside it
   (`check_precision`);
6. idle power, temperature, power limit and clocks-event (throttle) reasons now (`check_state`);
7. RAPL readable or not (`check_rapl`). Check 8 (a cluster's nodes) needs Ray: `orchestrator/doctor_fanout.py`.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from t2a_ray.errors import MeteringError
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.cpu import RAPL_ROOT, RaplCpu
from t2a_ray.metering.gpu import GPU, reason_names, throttling
from t2a_ray.metering.meter import Meter
from t2a_ray.metering.tickgrid import TickGrid
from t2a_ray.metering.timeline import CounterUpdate, PowerTrace, counter_updates, update_period_s

PASS, WARN, FAIL = "pass", "warn", "fail"
Busy = Callable[[float], None]

#: Coverage's tolerance T: an offset's busy energy may be off the mean of all offsets' by this share. A
#: counter that sees every phase's work counts each burst to within a quarter; a part-time counter (25 ms
#: of each 100 ms) misses most of a 25 ms burst at 3 of 4 phases (coverage near 0) and scales it up ~4× at
#: the fourth, so T leaves room for a small phase effect and none for a blind spot.
COVERAGE_TOLERANCE = 0.25
#: Confidence of each offset's coverage interval.
COVERAGE_LEVEL = 0.95
#: Below this ANOVA p the figure says that the offsets differ (a phase effect, named even when it passes).
COVERAGE_P = 0.01
#: Precision: the meter's CV of fixed-work windows that passes, and that warns (above it fails).
PRECISION_PASS_CV, PRECISION_WARN_CV = 0.02, 0.05
#: Counter against power integral: agreement that passes, and that warns (above it fails).
AGREEMENT_PASS, AGREEMENT_WARN = 0.05, 0.20
#: A counter read slower than this (s) is worth knowing about: the meter's overhead grows with it.
SLOW_READ_S = 0.005
#: At one read per tick the meter reads ~10 times a second; above this it did not lock onto the ticks.
READS_PER_S_LOCKED = 15.0
HOT_C = 85.0
GRID_LEARNING_S = 1.0  # idle time the meter gets to learn the tick grid before the first window
DENSE_S = 0.005  # sampling interval of the checks' own recordings: a tick located to ±2.5 ms

FIX_NO_COUNTER = (
    "set `metering: {gpu: power-integral}` in the sweep to meter with integrated power samples "
    "(less precise, labelled nvml-power-integral), or use a card/driver whose counter works "
    "(not a VM/MIG slice)"
)

FIX_COVERAGE = (
    "the counter misses part of the work at some phases and overcounts it at others: energy of short "
    "or bursty work is wrong on this card; use long windows of steady work (metering.min_window_s ≥ 2) "
    "and compare with an external meter before trusting the figures"
)

TITLES = {
    1: "energy counter present and advancing",
    2: "counter sees all work (phase-locked 25 % square wave)",
    3: "counter against integrated power (steady load)",
    4: "meter cost: one read, reads per second, fixed cost per window",
    5: "meter precision (fixed-work windows)",
    6: "idle power, temperature, power limit, throttle reasons",
    7: "CPU energy (RAPL)",
}


@dataclass(frozen=True)
class Check:
    """One line of the record: `status` is pass | warn | fail; `fix` says what to do when not pass."""

    number: int
    title: str
    status: str
    figure: str
    fix: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Profile:
    """How long the checks measure: `QUICK` keeps a GPU under ~20 s, `FULL` under ~3 min."""

    counter_s: float
    offsets: int
    coverage_repeats: int
    coverage_periods: int
    agreement_s: float
    windows: int
    window_s: float
    idle_s: float


QUICK = Profile(
    counter_s=1.0,
    offsets=8,
    coverage_repeats=2,
    coverage_periods=2,
    agreement_s=1.0,
    windows=3,
    window_s=0.5,
    idle_s=0.5,
)
FULL = Profile(
    counter_s=3.0,
    offsets=8,
    coverage_repeats=4,
    coverage_periods=5,
    agreement_s=3.0,
    windows=10,
    window_s=1.0,
    idle_s=2.0,
)


# ---------------------------------------------------------------------------------------------- recording
class Recording:
    """Dense (time, counter mJ, power mW) samples of one GPU, taken by the clock's periodic task
    while the caller works or sleeps: ``with Recording(gpu, clock) as rec: ...``."""

    def __init__(self, gpu: GPU, clock: Clock, interval_s: float = DENSE_S):
        self.gpu, self.clock, self.interval_s = gpu, clock, interval_s
        self.t_s: list[float] = []
        self.energy_mj: list[float | None] = []
        self.power_mw: list[float | None] = []
        self._lock = threading.Lock()  # the sampler thread appends while the caller reads
        self._stop: Callable[[], None] | None = None

    def _sample(self, due_s: float) -> float:
        t0 = self.clock.now_s()
        try:
            energy, power = self.gpu.energy_and_power()
        except MeteringError:
            energy = power = None
        with self._lock:
            self.t_s.append(0.5 * (t0 + self.clock.now_s()))
            self.energy_mj.append(None if energy is None else float(energy))
            self.power_mw.append(None if power is None else float(power))
        return due_s + self.interval_s

    def __enter__(self) -> Recording:
        self._stop = self.clock.start_periodic(self._sample, name="t2a-ray-doctor")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._stop is not None:
            self._stop()

    def updates(self) -> list[CounterUpdate]:
        with self._lock:
            return counter_updates(list(self.t_s), list(self.energy_mj))

    def power(self, delay_s: float) -> PowerTrace:
        with self._lock:
            return PowerTrace(list(self.t_s), list(self.power_mw), delay_s)


def _counter_j(updates: Sequence[CounterUpdate], t0_s: float, t1_s: float, within_s: float) -> float | None:
    """Counter energy between the updates at `t0_s` and `t1_s` (J); None where no update lies within
    `within_s` of either (a tick the sampler missed: the nearest one would be a whole tick off)."""
    ends = [min(updates, key=lambda u: abs(u.time_s - t)) for t in (t0_s, t1_s)]
    if any(abs(u.time_s - t) > within_s for u, t in zip(ends, (t0_s, t1_s), strict=True)):
        return None
    return (ends[1].energy_mj - ends[0].energy_mj) * 1e-3


def cv(xs: Sequence[float | None]) -> float | None:
    """Coefficient of variation (sample stdev / mean) of the values that are not None; None with fewer
    than two or a zero mean. (Also the meter benchmark's.)"""
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return None
    m = statistics.mean(xs)
    return statistics.stdev(xs) / m if m else None


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f} %"


# ------------------------------------------------------------------------------------------------ 1. counter
def check_counter(gpu: GPU, clock: Clock, seconds: float, busy: Busy | None = None) -> Check:
    """Record the counter for `seconds` (under `busy` load when given, so that it must move)."""
    title = TITLES[1]
    if not gpu.supports_energy_counter():
        return Check(1, title, FAIL, "no energy counter (NVML: not supported)", FIX_NO_COUNTER)
    with Recording(gpu, clock) as rec:
        (busy or clock.sleep)(seconds)
        clock.sleep(DENSE_S)
    updates = rec.updates()
    if not updates:
        return Check(
            1, title, FAIL, f"energy counter frozen: no change in {seconds:.1f} s of reads", FIX_NO_COUNTER
        )
    period = update_period_s(updates)
    if period is None:
        return Check(1, title, WARN, f"one update in {seconds:.1f} s", "rerun; the counter updates rarely")
    gaps = sorted(b.time_s - a.time_s for a, b in zip(updates, updates[1:], strict=False))
    worst = max(abs(g - period) for g in gaps)
    data = {"period_s": period, "updates": len(updates), "gap_min_s": gaps[0], "gap_max_s": gaps[-1]}
    figure = (
        f"updates every {1e3 * period:.1f} ms ({len(updates)} in {seconds:.1f} s; "
        f"gaps {1e3 * gaps[0]:.1f}–{1e3 * gaps[-1]:.1f} ms)"
    )
    if worst > 0.25 * period:
        fix = "the counter is not on a steady grid: the meter then reads every 50 ms (more overhead)"
        return Check(1, title, WARN, figure, fix, data)
    return Check(1, title, PASS, figure, None, data)


# ---------------------------------------------------------------------------------------------- 2. coverage
def _grid(updates: Sequence[CounterUpdate]) -> tuple[float, float] | None:
    """(period, a tick's time) of the counter, from the meter's own `TickGrid` chained over the sharp
    updates (the period sharpens as the chain lengthens); None while it knows no grid."""
    grid = TickGrid(sharp_s=3 * DENSE_S)
    for u in updates:
        grid.observe(u.before_s, u.seen_s)
    period, tick = grid.period_s, grid.nearest_tick_s(updates[-1].time_s) if updates else None
    return None if period is None or tick is None else (period, tick)


def _anova_p(groups: Sequence[Sequence[float]]) -> float:
    """One-way ANOVA p-value across `groups` (≥ 2 values each). Zero within-group spread: 0 or 1."""
    from scipy import stats  # a dependency already; imported here so that the meter never loads it

    values = [x for g in groups for x in g]
    grand = statistics.mean(values)
    between = sum(len(g) * (statistics.mean(g) - grand) ** 2 for g in groups)
    within = sum((x - statistics.mean(g)) ** 2 for g in groups for x in g)
    df_between, df_within = len(groups) - 1, len(values) - len(groups)
    if within <= 1e-12 * max(between, 1e-300):
        return 0.0 if between > 0 else 1.0
    return float(stats.f.sf((between / df_between) / (within / df_within), df_between, df_within))


@dataclass(frozen=True)
class Coverage:
    """The square wave's statistic (module docstring, check 2) over offsets k with repeats."""

    mean_j: float  # the mean of the offsets' mean busy energies per period (J); coverage is relative to it
    coverage: dict[int, float]  # offset k's mean over `mean_j`
    ci: dict[int, tuple[float, float]]  # its COVERAGE_LEVEL confidence interval
    anova_p: float  # one-way ANOVA across offsets: do they differ at all?

    def outside(self, tolerance: float) -> list[int]:
        """Offsets whose coverage lies outside 1 ± `tolerance`."""
        return [k for k, c in self.coverage.items() if abs(c - 1) > tolerance]

    def decided_outside(self, tolerance: float) -> list[int]:
        """Offsets whose whole CI lies outside 1 ± `tolerance`."""
        return [k for k, (lo, hi) in self.ci.items() if lo > 1 + tolerance or hi < 1 - tolerance]

    def largest(self) -> int:
        """The offset furthest from the mean."""
        return max(self.coverage, key=lambda k: abs(self.coverage[k] - 1))


def coverage_stats(groups: Mapping[int, Sequence[float]], level: float = COVERAGE_LEVEL) -> Coverage:
    """Each offset's coverage and its CI, from its repeats `groups[k]` (≥ 1 each, and more values than
    offsets). The variance is pooled within offsets (ANOVA's residual, N − K degrees of freedom) and
    carried to the contrast `mean_k − mean of means`, which shares offset k's repeats; the mean in the
    denominator is taken as known (its relative error is the repeats' CV over √N). A zero or negative
    mean leaves `coverage` and `ci` empty."""
    from scipy import stats  # a dependency already; imported here so that the meter never loads it

    means = {k: statistics.mean(v) for k, v in groups.items()}
    mean_j = statistics.mean(means.values())
    p = _anova_p(list(groups.values()))
    if mean_j <= 0:
        return Coverage(mean_j, {}, {}, p)
    n_offsets, df = len(groups), sum(len(v) for v in groups.values()) - len(groups)
    residual = sum((x - means[k]) ** 2 for k, v in groups.items() for x in v) / df
    t = float(stats.t.ppf(0.5 + level / 2, df))
    inverse_n = {k: 1 / len(v) for k, v in groups.items()}
    coverage, ci = {}, {}
    for k, m in means.items():
        # mean_k − mean of means = (1 − 1/K)·mean_k − (1/K)·Σ_{j≠k} mean_j
        others = sum(inverse_n.values()) - inverse_n[k]
        variance = residual * ((1 - 1 / n_offsets) ** 2 * inverse_n[k] + others / n_offsets**2)
        half = t * math.sqrt(variance) / mean_j
        coverage[k] = m / mean_j
        ci[k] = (coverage[k] - half, coverage[k] + half)
    return Coverage(mean_j, coverage, ci, p)


def check_coverage(
    gpu: GPU,
    clock: Clock,
    busy: Busy,
    offsets: int = 8,
    repeats: int = 2,
    periods: int = 3,
    duty: float = 0.25,
    seed: int = 0,
) -> Check:
    """The phase-locked square wave (module docstring): busy energy per period at each offset, judged by
    `judge_coverage`."""
    title = TITLES[2]
    if not gpu.supports_energy_counter():
        return Check(2, title, FAIL, "no energy counter", FIX_NO_COUNTER)
    rng = random.Random(seed)
    per_offset: dict[int, list[float]] = {k: [] for k in range(offsets)}
    per_period: dict[int, list[float]] = {k: [] for k in range(offsets)}
    blocks = []
    with Recording(gpu, clock) as rec:
        clock.sleep(1.0)  # idle: the grid and the idle power
        idle = rec.updates()
        if len(idle) < 3:
            return Check(2, title, FAIL, "the counter did not move while idle (check 1)", FIX_NO_COUNTER)
        idle_w = (idle[-1].energy_mj - idle[0].energy_mj) * 1e-3 / (idle[-1].time_s - idle[0].time_s)
        for _ in range(repeats):
            order = list(range(offsets))
            rng.shuffle(order)  # offsets in random order: a drift in time is not read as an offset effect
            for k in order:
                grid = _grid(rec.updates())  # refitted as the recording grows
                if grid is None:
                    fix = "the counter's ticks are not on a steady grid: the square wave cannot lock to them"
                    return Check(2, title, WARN, "no tick grid", fix)
                period, tick = grid
                start = tick + (int((clock.now_s() + 0.05 - tick) // period) + 1) * period
                # Bursts from one period after the block's first tick; the block ends two periods after
                # the last burst's period (which the burst may overrun): no burst comes near a boundary
                # tick, so a grid a few ms off moves no burst energy across one.
                busy_s = 0.0
                for p in range(periods):
                    clock.sleep(start + (p + 1 + k / offsets) * period - clock.now_s())
                    t0 = clock.now_s()
                    busy(duty * period)
                    busy_s += clock.now_s() - t0
                end = start + (periods + 2) * period
                clock.sleep(end - clock.now_s())  # the next block starts after this one ends
                blocks.append((k, start, end, busy_s))
        clock.sleep(2 * period)  # the ticks after the last end
    updates = rec.updates()
    missed = 0
    for k, start, end, busy_s in blocks:
        energy_j = _counter_j(updates, start, end, within_s=period / 4)
        if energy_j is None or busy_s <= 0:
            missed += 1
            continue
        excess_j = energy_j - idle_w * (end - start)
        per_period[k].append(excess_j / periods)
        # Beside it, the busy power over idle: the host may stretch a burst (a launch held up by the
        # sampler's driver calls), which a counter that sees all work reads as more energy but the same
        # power: where the two disagree across offsets, the bursts' durations differed.
        per_offset[k].append(excess_j / busy_s)
    data = {
        "busy_j_per_period": {str(k): v for k, v in per_period.items()},
        "busy_w_over_idle": {str(k): v for k, v in per_offset.items()},
        "period_s": period,
        "idle_w": idle_w,
        "offsets": offsets,
        "repeats": repeats,
        "blocks_without_ticks": missed,
    }
    return judge_coverage(data)


def judge_coverage(data: Mapping[str, Any]) -> Check:
    """Check 2's verdict on its recorded `data` (`busy_j_per_period`: offset → repeats, J; `offsets`,
    `repeats`, `blocks_without_ticks`), with the statistic added to the data: so a record from an
    earlier run can be judged again (`benchmarks/doctor_coverage.py`)."""
    title, tolerance = TITLES[2], COVERAGE_TOLERANCE
    groups = {int(k): list(v) for k, v in data["busy_j_per_period"].items()}
    if any(len(v) < 2 for v in groups.values()):
        fix = "the sampler missed ticks (a busy host?): rerun the doctor"
        figure = f"{data['blocks_without_ticks']} of {data['offsets'] * data['repeats']} blocks without ticks"
        return Check(2, title, WARN, figure, fix, dict(data))
    stat = coverage_stats(groups)
    data = {
        **data,
        "mean_busy_j_per_period": stat.mean_j,
        "coverage": {str(k): c for k, c in stat.coverage.items()},
        "coverage_ci": {str(k): ci for k, ci in stat.ci.items()},
        "coverage_level": COVERAGE_LEVEL,
        "tolerance": tolerance,
        "anova_p": stat.anova_p,
    }
    if stat.mean_j <= 0:
        figure = f"busy energy {stat.mean_j:.2f} J per period over idle: the counter does not see the bursts"
        return Check(2, title, FAIL, figure, FIX_COVERAGE, data)
    k = stat.largest()
    lo, hi = stat.ci[k]
    shares = sorted(stat.coverage.values())
    figure = (
        f"busy energy {stat.mean_j:.2f} J per period over idle; by offset {shares[0]:.2f}–{shares[-1]:.2f} "
        f"of its mean ({len(groups)} offsets × {data['repeats']}); largest effect "
        f"{100 * (stat.coverage[k] - 1):+.1f} % at offset {k} ({100 * COVERAGE_LEVEL:.0f} % CI "
        f"{100 * (lo - 1):+.1f}…{100 * (hi - 1):+.1f} %); "
    )
    differ = stat.anova_p < COVERAGE_P
    if differ:
        effect = f"the offsets differ (ANOVA p = {stat.anova_p:.2g}): a phase effect within the tick"
    else:
        effect = f"the offsets do not differ significantly (ANOVA p = {stat.anova_p:.2g})"
    band = f"±{100 * tolerance:.0f} %"
    decided, outside = stat.decided_outside(tolerance), stat.outside(tolerance)
    if decided:
        figure += f"offsets {', '.join(map(str, decided))} outside {band} beyond their CI; {effect}"
        return Check(2, title, FAIL, figure, FIX_COVERAGE, data)
    if outside:
        figure += (
            f"offsets {', '.join(map(str, outside))} outside {band}, but their CI reaches into it; {effect}"
        )
        fix = "not decided by these repeats: rerun the full doctor (more repeats) to decide"
        return Check(2, title, WARN, figure, fix, data)
    figure += f"within {band}; {effect}"
    if differ:
        figure += ", which windows of ≥ 1 s of steady work average out"
    return Check(2, title, PASS, figure, None, data)


def coverage_by_offset(data: Mapping[str, Any]) -> str:
    """Each offset's coverage and CI from a judged check 2's `data`: "coverage (95 % CI) 0: 1.012
    (0.98–1.04), …"."""
    ci = data["coverage_ci"]
    shares = ", ".join(f"{k}: {c:.3f} ({ci[k][0]:.3f}–{ci[k][1]:.3f})" for k, c in data["coverage"].items())
    return f"coverage ({100 * data['coverage_level']:.0f} % CI) {shares}"


# -------------------------------------------------------------------------------------------- 3. agreement
def check_power_agreement(gpu: GPU, clock: Clock, busy: Busy, seconds: float) -> Check:
    """Counter energy between two ticks well inside a steady load, against the power samples integrated
    over the same span (shifted by the GPU's power delay)."""
    title = TITLES[3]
    if not gpu.supports_power():
        return Check(3, title, WARN, "no power reading: no second reading of a window", None)
    if not gpu.supports_energy_counter():
        return Check(3, title, WARN, "no energy counter: nothing to compare", FIX_NO_COUNTER)
    with Recording(gpu, clock) as rec:
        clock.sleep(0.3)
        t0 = clock.now_s()
        busy(seconds)
        t1 = clock.now_s()
        clock.sleep(0.3)
    inside = [u for u in rec.updates() if t0 + 0.2 <= u.time_s <= t1 - 0.05]
    if len(inside) < 2:
        return Check(3, title, FAIL, "the counter did not move during the load", FIX_NO_COUNTER)
    lag = gpu.counter_lag_hint_s()
    a, b = inside[0], inside[-1]
    counter_j = (b.energy_mj - a.energy_mj) * 1e-3
    power_j = rec.power(gpu.power_delay_hint_s()).integral_mj(a.time_s - lag, b.time_s - lag) * 1e-3
    diff = (power_j - counter_j) / counter_j if counter_j else float("inf")
    data = {"counter_j": counter_j, "power_integral_j": power_j, "difference": diff}
    figure = (
        f"counter {counter_j:.1f} J, power integral {power_j:.1f} J over {b.time_s - a.time_s:.2f} s: "
        f"{100 * diff:+.1f} %"
    )
    if abs(diff) <= AGREEMENT_PASS:
        return Check(3, title, PASS, figure, None, data)
    status = WARN if abs(diff) <= AGREEMENT_WARN else FAIL
    fix = "counter and power sensor disagree on a steady load: compare with an external meter"
    return Check(3, title, status, figure, fix, data)


# ------------------------------------------------------------------------------------ 4–5. the meter itself
def meter_windows(gpu: GPU, clock: Clock, busy: Busy, n: int, seconds: float) -> list[dict[str, float]]:
    """`n` metered windows of `busy(seconds)`, with naive endpoint reads inside each and the wall time
    the meter spends opening and closing it (outside the work); a first window is discarded (the meter
    learns the counter's tick grid)."""
    meter = Meter(gpu, None, clock=clock)
    rows = []
    try:
        meter.start()
        # In a sweep the idle baseline comes before any window, and the meter learns the counter's tick
        # grid from it (it then reads once per tick inside windows): give it the same chance here.
        clock.sleep(GRID_LEARNING_S)
        for i in range(n + 1):
            clock.sleep(random.Random(i).uniform(0.0, 0.1))  # random phase against the ticks, as in use
            t_before = clock.now_s()
            with meter.window() as w:
                t_in = clock.now_s()
                e0 = gpu.total_energy_mj() if gpu.supports_energy_counter() else None
                busy(seconds)
                e1 = gpu.total_energy_mj() if gpu.supports_energy_counter() else None
                t_out = clock.now_s()
            t_after = clock.now_s()
            r = w.result
            assert r is not None
            times = meter.samples(r.start_s)["t_s"]
            reads = sum(1 for t in times if t <= r.end_s)
            if i == 0:
                continue
            rows.append(
                {
                    "duration_s": t_out - t_in,
                    "meter_j": r.gpu_energy_j,
                    "naive_j": None if e0 is None or e1 is None else (e1 - e0) * 1e-3,
                    "open_s": t_in - t_before,
                    "close_s": t_after - t_out,
                    "reads_per_s": reads / r.window_s,
                    "method": r.energy_method,
                }
            )
    finally:
        meter.close()
    return rows


def read_cost_s(gpu: GPU, clock: Clock, calls: int = 100) -> float | None:
    """Median wall time of one counter read (s); None without a counter."""
    if not gpu.supports_energy_counter():
        return None
    costs = []
    for _ in range(calls):
        t0 = clock.now_s()
        gpu.total_energy_mj()
        costs.append(clock.now_s() - t0)
    return statistics.median(costs)


def check_meter_cost(read_s: float | None, windows: Sequence[Mapping[str, float]]) -> Check:
    title = TITLES[4]
    reads_per_s = statistics.median(w["reads_per_s"] for w in windows)
    open_s = statistics.median(w["open_s"] for w in windows)
    close_s = statistics.median(w["close_s"] for w in windows)
    read_text = "—" if read_s is None else f"{1e3 * read_s:.2f} ms"
    figure = (
        f"one read {read_text}; {reads_per_s:.1f} reads/s in windows; per window "
        f"{1e3 * open_s:.1f} ms to open, {1e3 * close_s:.0f} ms to close (wall time outside the work)"
    )
    data = {"read_s": read_s, "reads_per_s": reads_per_s, "open_s": open_s, "close_s": close_s}
    if read_s is not None and read_s > SLOW_READ_S:
        fix = (
            "counter reads are slow here: measure the slowdown with "
            "benchmarks/meter_precision.py --overhead-intervals"
        )
        return Check(4, title, WARN, figure, fix, data)
    if reads_per_s > READS_PER_S_LOCKED:
        fix = "the meter did not lock onto the counter's ticks and reads every 50 ms (twice the overhead)"
        return Check(4, title, WARN, figure, fix, data)
    return Check(4, title, PASS, figure, None, data)


def check_precision(windows: Sequence[Mapping[str, Any]]) -> Check:
    title = TITLES[5]
    meter = [w["meter_j"] for w in windows if w["meter_j"] is not None]
    naive = [w["naive_j"] for w in windows if w["naive_j"] is not None]
    durations = [w["duration_s"] for w in windows]
    meter_cv, naive_cv, duration_cv = cv(meter), cv(naive), cv(durations)
    data = {"meter_cv": meter_cv, "naive_cv": naive_cv, "duration_cv": duration_cv, "windows": list(windows)}
    method = windows[0]["method"].split(";")[0] if windows else "—"
    figure = (
        f"CV over {len(meter)} windows of {statistics.mean(durations):.2f} s: meter {_pct(meter_cv)}, "
        f"naive reads {_pct(naive_cv)}, durations {_pct(duration_cv)} ({method})"
    )
    if meter_cv is None:
        return Check(5, title, FAIL, figure, "no window was metered: see checks 1 and 3", data)
    if meter_cv <= PRECISION_PASS_CV:
        return Check(5, title, PASS, figure, None, data)
    fix = "windows vary: lengthen them (metering.min_window_s ≥ 2) and check 2 and 6 for the cause"
    return Check(5, title, WARN if meter_cv <= PRECISION_WARN_CV else FAIL, figure, fix, data)


# ------------------------------------------------------------------------------------------------- 6. state
def check_state(gpu: GPU, clock: Clock, idle_s: float) -> Check:
    """Idle power (counter over `idle_s`, else mean power), temperature, power limit, reasons now."""
    title = TITLES[6]
    with Recording(gpu, clock) as rec:
        clock.sleep(idle_s)
    updates = rec.updates()
    if len(updates) >= 2:
        idle_w = (
            (updates[-1].energy_mj - updates[0].energy_mj) * 1e-3 / (updates[-1].time_s - updates[0].time_s)
        )
    else:
        power = [p for p in rec.power_mw if p is not None]
        idle_w = statistics.mean(power) * 1e-3 if power else None
    temperature = gpu.temperature_c()
    mask = gpu.clocks_event_reasons()
    names = None if mask is None else reason_names(mask)
    limit = gpu.power_limit_w()
    data = {"idle_power_w": idle_w, "temperature_c": temperature, "power_limit_w": limit, "reasons": names}
    figure = (
        f"idle {'—' if idle_w is None else f'{idle_w:.0f} W'}, "
        f"{'—' if temperature is None else f'{temperature:.0f} °C'}, "
        f"limit {'—' if limit is None else f'{limit:.0f} W'}, "
        f"reasons: {'not readable' if names is None else ', '.join(names) or 'none'}"
    )
    slowing = throttling(names or ())
    if slowing:
        fix = f"the card slows its clocks while idle ({', '.join(slowing)}): cool it, check its power supply"
        return Check(6, title, WARN, figure, fix, data)
    if temperature is not None and temperature >= HOT_C:
        return Check(6, title, WARN, figure, "the card is hot while idle: set metering.cooldown_c", data)
    return Check(6, title, PASS, figure, None, data)


# -------------------------------------------------------------------------------------------------- 7. RAPL
def check_rapl(rapl_root: str = str(RAPL_ROOT)) -> Check:
    title = TITLES[7]
    try:
        RaplCpu(rapl_root)
    except MeteringError as e:
        fix = "CPU energy will be an estimate labelled estimate:cpu-time"
        return Check(7, title, WARN, f"RAPL absent or unreadable ({e})", fix, {"rapl": False})
    return Check(7, title, PASS, f"RAPL readable under {rapl_root}", None, {"rapl": True})


# ------------------------------------------------------------------------------------------------ together
def no_gpu_checks(why: str) -> list[Check]:
    """Checks 1–6 on a machine (or Ray task) without a GPU: each a 'no GPU' warning."""
    fix = "nothing to check on this machine's GPUs"
    return [Check(n, TITLES[n], WARN, f"no GPU ({why})", fix) for n in range(1, 7)]


def run_gpu_checks(gpu: GPU, clock: Clock, busy: Busy, profile: Profile = FULL) -> list[Check]:
    """Checks 1–6 on one GPU, idle state first (before the load warms the card)."""
    checks = [check_state(gpu, clock, profile.idle_s), check_counter(gpu, clock, profile.counter_s, busy)]
    if checks[-1].status != FAIL:
        checks.append(
            check_coverage(
                gpu, clock, busy, profile.offsets, profile.coverage_repeats, profile.coverage_periods
            )
        )
    else:
        checks.append(Check(2, TITLES[2], FAIL, "skipped: check 1 failed", FIX_NO_COUNTER))
    checks.append(check_power_agreement(gpu, clock, busy, profile.agreement_s))
    read_s = read_cost_s(gpu, clock)
    windows = meter_windows(gpu, clock, busy, profile.windows, profile.window_s)
    checks += [check_meter_cost(read_s, windows), check_precision(windows)]
    return sorted(checks, key=lambda c: c.number)


def worst(checks: Sequence[Check]) -> str:
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else (WARN if WARN in statuses else PASS)


def table_markdown(checks_by_gpu: Mapping[str, Sequence[Check]]) -> str:
    """One Markdown table: a row per (GPU, check), with its figure and, where not pass, the fix."""
    lines = ["| GPU | # | check | status | figure | what to do |", "|---|---|---|---|---|---|"]
    for where, checks in checks_by_gpu.items():
        for c in checks:
            cells = [where, str(c.number), c.title, c.status.upper(), c.figure, c.fix or ""]
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines)
