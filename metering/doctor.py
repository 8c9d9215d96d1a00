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
   at every offset; a part-time one swings from ~0 (bursts in its blind part) to ~4× (bursts in the
   part it scales up). The statistic is one-way ANOVA across offsets (F test of the offset means
   against the spread of their repeats), and the range of the offset means against their mean; it
   fails when both say so (`COVERAGE_P`, `COVERAGE_RANGE`): ANOVA because it uses the sizes of the
   differences — Kruskal–Wallis, on ranks, cannot reach p < 0.01 with 8 groups of 2 repeats even
   when the groups are perfectly apart — and the range floor because a real but tiny offset effect
   (repeats that agree to 1 %) is no reason to distrust the meter;
3. the counter against integrated power on a steady load (`check_power_agreement`);
4. the cost of one counter read, the meter's reads per second of window and its fixed cost per window
   (time to open and to close, outside the work) (`check_meter_cost`);
5. the meter's precision: CV of repeated fixed-work windows, naive endpoint reads beside it
   (`check_precision`);
6. idle power, temperature, power limit and clocks-event (throttle) reasons now (`check_state`);
7. RAPL readable or not (`check_rapl`). Check 8 (a cluster's nodes) needs Ray: `orchestrator/doctor.py`.
"""

from __future__ import annotations

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

#: Coverage fails when the offset means differ beyond their repeats' spread (ANOVA p below this)...
COVERAGE_P = 0.01
#: ...and their range exceeds this share of their mean (a part-time counter's is several times it).
COVERAGE_RANGE = 0.5
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
    """The phase-locked square wave (module docstring): busy energy per period at each offset."""
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
        # The bursts are fixed work, but the host may stretch a burst (a launch held up by the sampler's
        # driver calls), and a stretched burst draws more static power: the statistic is the busy power
        # over idle, which a counter that sees all work keeps at every offset.
        excess_j = energy_j - idle_w * (end - start)
        per_offset[k].append(excess_j / busy_s)
        per_period[k].append(excess_j / periods)
    if any(len(v) < 2 for v in per_offset.values()):
        fix = "the sampler missed ticks (a busy host?): rerun the doctor"
        return Check(2, title, WARN, f"{missed} of {len(blocks)} blocks without their ticks", fix)
    means = [statistics.mean(v) for v in per_offset.values()]
    grand = statistics.mean(means)
    p = _anova_p(list(per_offset.values()))
    spread = (max(means) - min(means)) / abs(grand) if grand else float("inf")
    data = {
        "busy_w_over_idle": {str(k): v for k, v in per_offset.items()},
        "busy_j_per_period": {str(k): v for k, v in per_period.items()},
        "period_s": period,
        "idle_w": idle_w,
        "anova_p": p,
        "range_of_means": spread,
        "offsets": offsets,
        "repeats": repeats,
        "blocks_without_ticks": missed,
    }
    all_values = [x for v in per_period.values() for x in v]
    figure = (
        f"busy energy {min(all_values):.2f}–{max(all_values):.2f} J per period over {offsets} offsets × "
        f"{repeats}; busy power over idle {grand:.0f} W, its offset means' range {100 * spread:.0f} % of "
        f"their mean; ANOVA p = {p:.2g}"
    )
    depends, large = p < COVERAGE_P, spread > COVERAGE_RANGE
    if grand <= 0 or (depends and large):
        fix = (
            "the counter misses part of the work at some phases: energy of short or bursty work is wrong "
            "on this card; use long windows of steady work (metering.min_window_s ≥ 2) and compare with an "
            "external meter before trusting the figures"
        )
        return Check(2, title, FAIL, figure, fix, data)
    if depends:  # a real but bounded phase effect: no part-time counter (that would swing ~0 to ~4×)
        fix = (
            f"the counter sees the work at every phase, but a {1e3 * duty * period:.0f} ms burst's energy "
            f"depends on where it falls within a tick by up to ±{50 * spread:.0f} %: windows of short, bursty "
            "work carry that error, windows of ≥ 1 s of steady work average it out (check 5)"
        )
        return Check(2, title, WARN, figure, fix, data)
    if large:
        fix = "the offsets' means spread widely but not beyond their repeats: rerun the full doctor to decide"
        return Check(2, title, WARN, figure, fix, data)
    return Check(2, title, PASS, figure, None, data)


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
