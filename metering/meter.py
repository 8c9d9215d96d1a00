"""The meter: windows of work with named phases, their GPU/CPU/DRAM energy, and an idle baseline.

How a window is measured (and why):

1. A background sampler reads the GPU's energy counter (and power) and keeps (time, counter, power)
   samples: every `sample_interval_s` (5 ms) outside windows, once per counter tick inside them. The
   counter ticks only every ~100 ms; the samples locate each tick in time. Inside a window they are
   sparse because one counter read costs milliseconds of busy driver time, which launch-bound work
   feels whichever process reads (measured per read per second, and the same from another process:
   benchmarks/results/meter_precision_h100.md; `t2a-ray doctor` measures it on any card). One read per
   tick is the fewest that keeps every tick: the ticks are on a steady grid, which `tickgrid.TickGrid`
   learns from the sharp updates seen outside windows, and the sampler reads midway between two ticks,
   so each read sees exactly one new one; the sharp ticks around the window carry over to those inside
   it (`timeline.refine_update_times`). While the grid is not known well enough, the sampler reads every
   `window_sample_interval_s` (50 ms) instead.
2. Entering a window synchronises the device (`sync`): work queued before the window would otherwise
   run — and draw energy — inside it; the start time is taken after the sync. Phase marks synchronise
   too, so that a phase's energy is that of its own kernels, not of the ones still queued from the last.
3. Leaving a window synchronises again, takes the end time, then *waits* — sampling densely — until the
   counter has published the tick that covers the end (at or after end + the counter's lag) and the one
   after it, which the `step` rule needs: before then the energy at the end is not yet known. On the
   H100 that is 0.11–0.22 s of wall time per window, none of it inside the work.
4. Energy = F(end) − F(start), F the counter interpolated within the ticks around each boundary by the
   `step` rule (`timeline.py`): the boundary is where the power steps. Where the GPU has no counter,
   the power samples are integrated instead, and the result says so.

`energy_method` names how every figure was obtained, as `gpu:…;cpu:…;dram:…;phases:…`:

* gpu: ``nvml-counter-interp`` (measured: the energy counter, placed between ticks by interpolation),
  ``nvml-power-integral`` (measured: power samples integrated over time; the counter is missing or
  failed, or the meter was told to use power, `gpu_energy="power-integral"`), ``none`` (no GPU).
* cpu: ``rapl`` (measured), ``estimate:cpu-time`` (estimated: process CPU time × watts per core; see
  `cpu.py`), ``none``.
* dram: ``rapl`` or ``none``.
* phases: the device the phase energies come from — ``gpu``, or without a GPU the CPU source's label
  (``rapl`` or ``estimate:cpu-time``) — or ``none`` when no phase was marked.

Throttling: while a window is open, every sample also reads the card's clocks-event reasons (a cheap
read, not the energy counter), and the window reads them at its open and close; `throttle_reasons`
names every reason seen, `throttled` says whether one of them slows the clocks (`gpu.throttling`).
Energy depends on the card's temperature and clocks: a throttled window is flagged, not dropped.
"""

from __future__ import annotations

import bisect
import math
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from t2a_ray.errors import MeteringError
from t2a_ray.metering.busy import window_busy_fraction
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.cpu import CpuReading, CpuSource, open_cpu
from t2a_ray.metering.gpu import GPU, open_visible_gpu, reason_names, throttling
from t2a_ray.metering.tickgrid import TickGrid
from t2a_ray.metering.timeline import (
    INTERPOLATIONS,
    CounterTimeline,
    PowerTrace,
    counter_updates,
    update_period_s,
)
from t2a_ray.schema import GPU_ENERGY_SOURCES, PHASE_COLUMNS, PHASES, WINDOW_FIGURES

_NOMINAL_TICK_S = 0.1  # what NVML's counter does on every GPU measured so far; refined from samples


def _no_sync() -> None:
    """The default device synchronisation: none (CPU work is synchronous)."""


@dataclass(frozen=True)
class WindowResult:
    """The energy of one window. None where a figure cannot be had — never a silent zero."""

    window_s: float
    generations_in_window: int
    gpu_energy_j: float | None
    idle_power_w: float | None
    cpu_energy_j: float | None
    dram_energy_j: float | None
    energy_method: str
    temperature_start_c: float | None
    temperature_end_c: float | None
    #: Energy of every phase marked in the window, summed over its generations (J). The phases together
    #: are the whole window: the stretch before the first mark belongs to the first phase.
    phase_energy_j: Mapping[str, float] = field(default_factory=dict)
    #: A second, independent reading of the GPU energy: the power samples integrated (J).
    gpu_power_integral_j: float | None = None
    start_s: float = 0.0
    end_s: float = 0.0
    warmup: bool = False
    #: Every clocks-event reason seen during the window, comma-separated ("" none; None: not readable).
    throttle_reasons: str | None = None

    @property
    def throttled(self) -> bool | None:
        """Whether a reason that slows the clocks (power cap, thermal, hardware slowdown) was seen."""
        if self.throttle_reasons is None:
            return None
        return bool(throttling([n for n in self.throttle_reasons.split(",") if n]))

    @property
    def gpu_energy_net_j(self) -> float | None:
        """Gross GPU energy minus what the idle GPU would have drawn over the same time."""
        if self.gpu_energy_j is None or self.idle_power_w is None:
            return None
        return self.gpu_energy_j - self.idle_power_w * self.window_s

    @property
    def avg_power_w(self) -> float | None:
        if self.gpu_energy_j is None or self.window_s <= 0:
            return None
        return self.gpu_energy_j / self.window_s

    def as_columns(self) -> dict[str, Any]:
        """Exactly `RESULT_COLUMNS`. A phase never marked is None (not 0)."""
        columns: dict[str, Any] = {name: getattr(self, name) for name in WINDOW_FIGURES}
        for phase, column in zip(PHASES, PHASE_COLUMNS, strict=True):
            columns[column] = self.phase_energy_j.get(phase)
        return columns


# The longest interval between two samples that can still place the counter's ticks (it ticks every
# ~0.1 s): the sweep file's `metering.sample_interval_s` is bounded by it too.
MAX_SAMPLE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class MeterSettings:
    """How a meter samples and places energy (`Meter` says what each knob does). Checked here, once."""

    sample_interval_s: float = 0.005
    window_sample_interval_s: float = 0.05
    read_per_tick: bool = True
    counter_lag_s: float | None = None  # None: the GPU's hint
    power_delay_s: float | None = None  # None: the GPU's hint
    interpolation: str = "step"
    history_s: float = 120.0
    gpu_energy: str = "counter"
    cooldown_c: float | None = None
    cooldown_max_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("sample_interval_s", "window_sample_interval_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value <= MAX_SAMPLE_INTERVAL_S):
                raise ValueError(
                    f"{name} = {value!r}: must be a number of seconds in (0, {MAX_SAMPLE_INTERVAL_S}] "
                    "(the counter ticks every ~0.1 s; sampling slower cannot place its ticks)"
                )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation = {self.interpolation!r}: must be one of {INTERPOLATIONS}")
        if self.gpu_energy not in GPU_ENERGY_SOURCES:
            raise ValueError(f"gpu_energy = {self.gpu_energy!r}: must be one of {GPU_ENERGY_SOURCES}")


@dataclass(eq=False)
class Window:
    """An open measurement window: the record the meter fills when it opens the window, at each phase
    mark and when it closes it; also the `PhaseMarker` handed to an adapter.

    ``w("denoise")`` means "from now on the work is denoising". After the `with` block, `w.result`
    holds the `WindowResult` (None if the block raised).
    """

    meter: Meter
    start_s: float
    cpu_start: CpuReading | None
    temperature_start_c: float | None
    reasons_mask: int | None  # OR of the reasons read at open (and, once closed, at close)
    generations_in_window: int = 1
    marks: list[tuple[float, str, CpuReading | None]] = field(default_factory=list)
    result: WindowResult | None = None
    closed: bool = False

    def __call__(self, phase: str) -> None:
        self.meter.mark(self, phase)

    def elapsed_s(self) -> float:
        """Seconds since the window opened (the caller synchronises first if it needs device time)."""
        return self.meter.clock.now_s() - self.start_s


class MeteredDevice(Protocol):
    """The device a meter's process computes on (`orchestrator.device.TorchDevice`)."""

    @property
    def is_cuda(self) -> bool: ...

    def uuid(self) -> str | None: ...

    def sync(self) -> None: ...


class Meter:
    """Measures windows of work on one GPU (or none) and the CPU.

    Devices are passed in (`gpu`, `cpu`); `open_meter` builds the real ones for this process. `sync` is
    the device synchronisation to run at window boundaries and phase marks (`torch.cuda.synchronize`);
    the meter never imports torch. `clock` is real time unless a test hands in a `FakeClock`.

    Sampling: every `sample_interval_s` outside windows and while a window closes (where tick times must
    be sharp); inside windows once per counter tick, midway between ticks, where the tick grid is known
    (`tickgrid.py`), else every `window_sample_interval_s` (either sees every tick; a counter read costs
    milliseconds of driver time, which a launch-bound generation would feel).

    `settings` (`MeterSettings`): `read_per_tick` False reads every `window_sample_interval_s` inside
    windows even where the tick grid is known (twice the reads; for comparison, and for a counter that
    is not on a grid). `counter_lag_s`: how late the counter publishes the energy it counts (None: the
    GPU's hint). `power_delay_s`: how late power samples trail the work (None: the GPU's hint).
    `interpolation`: "step" (default) or "linear" — how energy is placed within a tick (`timeline.py`).
    `gpu_energy`: "counter" (default) or "power-integral": integrate power samples even where the
    counter works (for a card whose counter `doctor` found absent or frozen). `cooldown_c`: before each
    window, wait (sampling, up to `cooldown_max_s`) until the GPU is at or below this temperature, so
    that windows start from a comparable card.
    """

    def __init__(
        self,
        gpu: GPU | None = None,
        cpu: CpuSource | None = None,
        settings: MeterSettings | None = None,
        *,
        sync: Callable[[], Any] | None = None,
        clock: Clock | None = None,
        node: str | None = None,
        notes: Mapping[str, Any] | None = None,
    ):
        settings = settings or MeterSettings()
        self.settings = settings
        self.gpu = gpu
        self.cooldown_c = settings.cooldown_c
        self.cooldown_max_s = float(settings.cooldown_max_s)
        self.cpu = cpu
        self.sync: Callable[[], Any] = sync or _no_sync
        self.sample_interval_s = float(settings.sample_interval_s)
        self.window_sample_interval_s = float(settings.window_sample_interval_s)
        self.read_per_tick = bool(settings.read_per_tick)
        self.clock = clock or Clock()
        lag_s, delay_s = settings.counter_lag_s, settings.power_delay_s
        self.counter_lag_s = float(lag_s if lag_s is not None else (gpu.counter_lag_hint_s() if gpu else 0.0))
        self.interpolation = settings.interpolation
        self.power_delay_s = float(
            delay_s if delay_s is not None else (gpu.power_delay_hint_s() if gpu else 0.0)
        )
        self.history_s = float(settings.history_s)
        self.node = node or socket.gethostname()
        self.notes = dict(notes or {})
        self.idle_power_w: float | None = None
        #: The counter's update period as last inferred from the samples (None until seen).
        self.counter_period_s: float | None = None
        self.sampler_errors = 0
        self._last_error: MeteringError | None = None

        self._has_counter = bool(gpu and gpu.supports_energy_counter() and settings.gpu_energy == "counter")
        self._has_power = bool(gpu and gpu.supports_power())
        self._lock = threading.RLock()
        self._times_s: list[float] = []
        self._energy_mj: list[float | None] = []
        self._power_mw: list[float | None] = []
        self._reasons: list[int | None] = []  # clocks-event reasons, read only while a window is open
        self._raw_last_mj: int | None = None
        # A bracket this narrow locates a tick: the reads around it were a dense sampler's (plus slack
        # for a read's own milliseconds and a late wake-up).
        self._tick_grid = TickGrid(sharp_s=3 * self.sample_interval_s)
        self._last_energy: tuple[float, float] | None = None  # (time, counter) of the last good read
        self._wrap_offset_mj = 0
        self._stop_sampler: Callable[[], None] | None = None
        self._open_starts: list[float] = []
        self._samples_since_trim = 0
        self._next_cpu_poll_s = -math.inf

    # lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> Meter:
        """Start the sampler and wait until it has seen three counter ticks (~0.3 s), so that a window
        opened right away can place its start (`step` needs the tick before the start's tick).
        Idempotent."""
        if self._stop_sampler is not None or self.gpu is None:
            return self
        self._stop_sampler = self.clock.start_periodic(self._sampler_tick)
        if self._has_counter:
            deadline = self.clock.now_s() + 5 * _NOMINAL_TICK_S
            while self.clock.now_s() < deadline and len(self._updates_since(-math.inf)) < 3:
                self.clock.sleep(self.sample_interval_s)
        return self

    def close(self) -> None:
        """Stop the sampler (the devices stay open: the caller owns them). Idempotent."""
        stop, self._stop_sampler = self._stop_sampler, None
        if stop is not None:
            stop()

    def __enter__(self) -> Meter:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._stop_sampler is not None

    # sampling -----------------------------------------------------------------------------------------------
    def _sampler_tick(self, due_s: float) -> float:
        """One sample on the sampler thread, due at `due_s`; returns when the next one is due."""
        self._sample()
        if not self._open_starts:
            return due_s + self.sample_interval_s
        with self._lock:
            at_s = (
                self._tick_grid.next_read_s(self.clock.now_s(), self.sample_interval_s)
                if self.read_per_tick
                else None
            )
        return due_s + self.window_sample_interval_s if at_s is None else at_s

    def _sample(self) -> None:
        """One (time, counter, power) sample. Runs on the sampler thread and, near window boundaries,
        on the caller's thread; the lock keeps the samples in time order."""
        gpu = self.gpu
        if gpu is None:
            return
        with self._lock:
            t0 = self.clock.now_s()
            try:
                raw_mj, power_mw = gpu.energy_and_power()
            except MeteringError as e:
                self.sampler_errors += 1
                self._last_error = e
                return
            t1 = self.clock.now_s()
            reasons = self._read_reasons() if self._open_starts else None
            energy_mj: float | None = None
            if raw_mj is not None:
                if self._raw_last_mj is not None and raw_mj < self._raw_last_mj:
                    self._wrap_offset_mj += gpu.energy_counter_range_mj  # the counter wrapped around
                self._raw_last_mj = raw_mj
                energy_mj = float(raw_mj + self._wrap_offset_mj)
            t_s = 0.5 * (t0 + t1)  # the read happened somewhere in [t0, t1]
            if energy_mj is not None:
                if self._last_energy is not None and energy_mj != self._last_energy[1]:
                    self._tick_grid.observe(self._last_energy[0], t_s)
                self._last_energy = (t_s, energy_mj)
            self._times_s.append(t_s)
            self._energy_mj.append(energy_mj)
            self._power_mw.append(None if power_mw is None else float(power_mw))
            self._reasons.append(reasons)
            self._samples_since_trim += 1
            if self._samples_since_trim >= 1000:
                self._trim(t1)
            if self.cpu is not None and t1 >= self._next_cpu_poll_s:
                # RAPL wraps every few minutes at full load: read it often enough to see every wrap.
                self._next_cpu_poll_s = t1 + 1.0
                self._read_cpu()

    def _trim(self, now_s: float) -> None:
        self._samples_since_trim = 0
        keep_from = now_s - self.history_s
        if self._open_starts:
            keep_from = min(keep_from, min(self._open_starts) - 2.0)
        cut = bisect.bisect_left(self._times_s, keep_from)
        if cut > 0:
            del self._times_s[:cut], self._energy_mj[:cut], self._power_mw[:cut], self._reasons[:cut]

    def samples(self, since_s: float = -math.inf) -> dict[str, list]:
        """A copy of the recorded samples (for diagnostics, benchmarks and replay fixtures)."""
        with self._lock:
            i = bisect.bisect_left(self._times_s, since_s)
            return {
                "t_s": self._times_s[i:],
                "energy_mj": self._energy_mj[i:],
                "power_mw": self._power_mw[i:],
                "reasons": self._reasons[i:],
            }

    def _updates_since(self, t_s: float) -> list:
        s = self.samples(t_s)
        return counter_updates(s["t_s"], s["energy_mj"])

    def _read_cpu(self) -> CpuReading | None:
        if self.cpu is None:
            return None
        try:
            return self.cpu.read()
        except MeteringError as e:
            self._last_error = e
            return None

    # windows ------------------------------------------------------------------------------------------------
    @contextmanager
    def window(self) -> Iterator[Window]:
        """A measurement window: ``with meter.window() as w: ...; w.result``. `w` is a PhaseMarker."""
        w = self._open_window()
        try:
            yield w
        except BaseException:
            self._close_window(w, failed=True)
            raise
        self._close_window(w, failed=False)

    def mark(self, w: Window, phase: str) -> None:
        """From now on the work in `w` is `phase` (a synchronised boundary)."""
        if w.closed:
            raise RuntimeError(f"phase {phase!r} marked on a closed window")
        if not isinstance(phase, str) or not phase:
            raise ValueError(f"phase = {phase!r}: must be a non-empty string such as 'denoise'")
        self.sync()
        w.marks.append((self.clock.now_s(), phase, self._read_cpu()))

    def measure(
        self,
        fn: Callable[[Window], Any],
        min_window_s: float = 0.0,
        max_generations: int | None = None,
        min_generations: int = 1,
    ) -> WindowResult:
        """Run `fn(phases)` repeatedly inside one window until the window has lasted `min_window_s`
        and `fn` has run `min_generations` times. A longer window spreads the counter's boundary error
        over more work. `max_generations` caps the calls whatever the window's length.

        `result.generations_in_window` is the number of calls; the phase energies are summed over them.
        """
        if not (isinstance(min_window_s, (int, float)) and min_window_s >= 0 and math.isfinite(min_window_s)):
            raise ValueError(f"min_window_s = {min_window_s!r}: must be a number of seconds ≥ 0")
        if max_generations is not None and max_generations < 1:
            raise ValueError(f"max_generations = {max_generations!r}: must be ≥ 1 or None")
        if min_generations < 1:
            raise ValueError(f"min_generations = {min_generations!r}: must be ≥ 1")
        with self.window() as w:
            n = 0
            while True:
                fn(w)
                n += 1
                self.sync()  # the clock must see the device's time, not the host's
                if (w.elapsed_s() >= min_window_s and n >= min_generations) or (
                    max_generations is not None and n >= max_generations
                ):
                    break
            w.generations_in_window = n
        assert w.result is not None
        return w.result

    def busy_fraction(self, result: WindowResult) -> float | None:
        """Share of `result`'s window in which the GPU ran a kernel, read after it (`busy.py`)."""
        return window_busy_fraction(self.gpu, self.clock, result.start_s, result.end_s)

    def measure_idle(self, seconds: float, during: Callable[[], Any] | None = None) -> float | None:
        """Measure the GPU's idle power over `seconds` of doing nothing; sets and returns `idle_power_w`.

        `during` runs first inside the window (then the window sleeps what is left of `seconds`): work
        that only reads the GPU (NVML queries), so that it costs no time beside the baseline; an error
        it raises ends the window unmeasured and propagates. None when there is no GPU power reading
        (`during` still runs). Every later window reports its net energy against it.
        """
        if not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds = {seconds!r}: must be a positive number of seconds")
        if self.gpu is None:
            if during is not None:
                during()
            self.idle_power_w = None
            return None
        with self.window() as w:
            t0 = self.clock.now_s()
            if during is not None:
                during()
            self.clock.sleep(max(0.0, seconds - (self.clock.now_s() - t0)))
        assert w.result is not None
        energy = w.result.gpu_energy_j
        self.idle_power_w = None if energy is None else energy / w.result.window_s
        return self.idle_power_w

    def _open_window(self) -> Window:
        if self.gpu is not None and not self.running:
            self.start()
        self._cool_down()
        self.sync()
        reasons_mask = self._read_reasons()
        temperature_start_c = self._temperature_c()
        start_s = self.clock.now_s()  # after the sync: nothing queued before the window runs inside it
        w = Window(self, start_s, self._read_cpu(), temperature_start_c, reasons_mask)
        with self._lock:
            self._open_starts.append(w.start_s)
        return w

    def _close_window(self, w: Window, failed: bool) -> None:
        try:
            if failed:
                return
            self.sync()
            end_s = self.clock.now_s()
            cpu_end = self._read_cpu()
            temperature_end_c = self._temperature_c()
            w.reasons_mask = _or(w.reasons_mask, self._read_reasons())
            w.result = self._result(w, end_s, cpu_end, temperature_end_c)
        finally:
            w.closed = True
            with self._lock:
                self._open_starts.remove(w.start_s)

    def _temperature_c(self) -> float | None:
        if self.gpu is None:
            return None
        try:
            return self.gpu.temperature_c()
        except MeteringError:
            return None

    def _read_reasons(self) -> int | None:
        if self.gpu is None:
            return None
        try:
            return self.gpu.clocks_event_reasons()
        except MeteringError:
            return None

    def _window_reasons(self, w: Window, end_s: float) -> str | None:
        """The names of every reason read during the window (`_or` of its samples' masks and its own)."""
        mask = w.reasons_mask
        s = self.samples(w.start_s)
        for t, reasons in zip(s["t_s"], s["reasons"], strict=True):
            if t <= end_s:
                mask = _or(mask, reasons)
        return None if mask is None else ",".join(reason_names(mask))

    def _cool_down(self) -> None:
        """Wait until the GPU is at or below `cooldown_c` (at most `cooldown_max_s`), outside any window."""
        if self.cooldown_c is None or self.gpu is None:
            return
        deadline = self.clock.now_s() + self.cooldown_max_s
        while self.clock.now_s() < deadline:
            temperature = self._temperature_c()
            if temperature is None or temperature <= self.cooldown_c:
                return
            self.clock.sleep(0.5)

    # the arithmetic of a window -----------------------------------------------------------------------------
    def _result(
        self, w: Window, end_s: float, cpu_end: CpuReading | None, temperature_end_c: float | None
    ) -> WindowResult:
        # Boundaries of the phase segments: start, every mark, end. Before the first mark: first phase.
        times = [w.start_s] + [t for t, _, _ in w.marks] + [end_s]
        names = ([w.marks[0][1]] + [p for _, p, _ in w.marks]) if w.marks else []
        cpu_points = [w.cpu_start] + [c for _, _, c in w.marks] + [cpu_end]

        gpu_energy_j = power_integral_j = None
        gpu_method = "none"
        gpu_cumulative_j: list[float] | None = None
        if self.gpu is not None:
            gpu_method, gpu_cumulative_j, power_integral_j = self._gpu_cumulative_j(times)
            gpu_energy_j = gpu_cumulative_j[-1] - gpu_cumulative_j[0]

        cpu_energy_j = dram_energy_j = None
        cpu_cumulative_j: list[float] | None = None
        if self.cpu is not None and all(c is not None for c in cpu_points):
            cpu_cumulative_j = [c.cpu_uj * 1e-6 for c in cpu_points]  # type: ignore[union-attr]
            cpu_energy_j = cpu_cumulative_j[-1] - cpu_cumulative_j[0]
            if cpu_points[0].dram_uj is not None and cpu_end is not None and cpu_end.dram_uj is not None:  # type: ignore[union-attr]
                dram_energy_j = (cpu_end.dram_uj - cpu_points[0].dram_uj) * 1e-6  # type: ignore[union-attr,operator]
        cpu_method = self.cpu.method if self.cpu is not None and cpu_energy_j is not None else "none"
        dram_method = "rapl" if dram_energy_j is not None else "none"

        # Phase energies are those of the device the model runs on: the GPU if there is one.
        phase_cumulative, phase_method = (
            (gpu_cumulative_j, "gpu") if self.gpu is not None else (cpu_cumulative_j, cpu_method)
        )
        phase_energy_j: dict[str, float] = {}
        if names and phase_cumulative is not None:
            for i, name in enumerate(names):
                phase_energy_j[name] = (
                    phase_energy_j.get(name, 0.0) + phase_cumulative[i + 1] - phase_cumulative[i]
                )
        else:
            phase_method = "none"

        return WindowResult(
            window_s=end_s - w.start_s,
            generations_in_window=w.generations_in_window,
            gpu_energy_j=gpu_energy_j,
            idle_power_w=self.idle_power_w,
            cpu_energy_j=cpu_energy_j,
            dram_energy_j=dram_energy_j,
            energy_method=f"gpu:{gpu_method};cpu:{cpu_method};dram:{dram_method};phases:{phase_method}",
            temperature_start_c=w.temperature_start_c,
            temperature_end_c=temperature_end_c,
            phase_energy_j=phase_energy_j,
            gpu_power_integral_j=power_integral_j,
            start_s=w.start_s,
            end_s=end_s,
            throttle_reasons=self._window_reasons(w, end_s),
        )

    def _gpu_cumulative_j(self, times: list[float]) -> tuple[str, list[float], float | None]:
        """(method, cumulative GPU energy at each time in J, power-integral energy over the window in J)."""
        start_s, end_s = times[0], times[-1]
        lag = self.counter_lag_s
        margin_s = lag + 4 * (self.counter_period_s or _NOMINAL_TICK_S) + 0.05 + self.power_delay_s
        timeline = None
        # Wait for the ticks the interpolation needs past the end (`step`: the one after the end's
        # tick), or, without a counter, for power samples past it. Sample on this thread meanwhile —
        # it has nothing else to do — so those ticks' times are known to a sample interval.
        deadline = end_s + lag + 5 * (self.counter_period_s or _NOMINAL_TICK_S) + 0.2
        power_end_s = end_s + self.power_delay_s
        while True:
            sampled_at = self.clock.now_s()
            self._sample()
            if self._has_counter:
                timeline = self._timeline(start_s - margin_s)
                if self.interpolation == "step":
                    done = timeline.covers_with_neighbours(end_s)
                else:
                    done = timeline.covers(end_s)
            else:
                done = bool(self._times_s) and self._times_s[-1] >= power_end_s
            now = self.clock.now_s()
            if done or now > deadline:
                break
            self.clock.sleep(max(0.0, self.sample_interval_s - (now - sampled_at)))
        if timeline is not None and timeline.period_s is not None:
            self.counter_period_s = timeline.period_s
        power = self._power_trace(start_s - margin_s)
        # The second reading: only if the power samples already reach past the end (no extra wait).
        power_j = power.integral_mj(start_s, end_s) * 1e-3 if power.covers(start_s, end_s) else None

        if timeline is not None and timeline.covers(start_s) and timeline.covers(end_s):
            return "nvml-counter-interp", [timeline.energy_mj_at(t) * 1e-3 for t in times], power_j
        if power_j is not None:
            return "nvml-power-integral", [power.cumulative_mj(t) * 1e-3 for t in times], power_j
        cause = self._last_error
        what = f" ({cause})" if cause is not None else ""
        raise MeteringError(
            f"GPU {self.gpu.index if self.gpu else '?'}: no energy counter or power samples cover the window "
            f"[{start_s:.3f}, {end_s:.3f}] s{what}"
        ) from cause

    def _timeline(self, since_s: float) -> CounterTimeline:
        s = self.samples(since_s)
        return CounterTimeline(
            counter_updates(s["t_s"], s["energy_mj"]), self.counter_lag_s, self.interpolation
        )

    def _power_trace(self, since_s: float) -> PowerTrace:
        s = self.samples(since_s)
        return PowerTrace(s["t_s"], s["power_mw"], self.power_delay_s)

    # provenance ---------------------------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """Where and how this meter measures: recorded once per GPU (per trial actor)."""
        info: dict[str, Any] = {
            "node": self.node,
            "gpu_index": None,
            "gpu_name": None,
            "gpu_uuid": None,
            "driver_version": None,
            "nvml_version": None,
            "power_limit_w": None,
            "gpu_energy_source": "none",
            "sample_interval_s": self.sample_interval_s,
            "window_sample_interval_s": self.window_sample_interval_s,
            "in_window_sampling": (
                "once per counter tick, between ticks; every window_sample_interval_s until the tick grid is known"
                if self.read_per_tick
                else "every window_sample_interval_s"
            ),
            "counter_lag_s": self.counter_lag_s,
            "power_delay_s": self.power_delay_s,
            "counter_period_s": self.counter_period_s,
            "interpolation": self.interpolation,
        }
        gpu = self.gpu
        if gpu is not None:
            info.update(
                gpu_index=gpu.index,
                gpu_name=gpu.name(),
                gpu_uuid=gpu.uuid(),
                driver_version=gpu.driver_version(),
                nvml_version=gpu.nvml_version(),
                power_limit_w=gpu.power_limit_w(),
                gpu_energy_source=gpu.counter_label
                if self._has_counter
                else (gpu.power_label if self._has_power else "none"),
                power_kind=gpu.power_kind() if self._has_power else None,
            )
            if self.counter_period_s is None:
                self.counter_period_s = update_period_s(self._updates_since(-math.inf))
                info["counter_period_s"] = self.counter_period_s
        if self.cpu is not None:
            info.update(self.cpu.provenance())
        else:
            info.update(cpu_method="none")
        info.update(self.notes)
        return info


def _or(a: int | None, b: int | None) -> int | None:
    """Bitwise or of two reason masks, None only where neither was read."""
    return b if a is None else (a if b is None else a | b)


def visible_gpu(
    device: MeteredDevice | None,
    *,
    require_gpu: bool = False,
    nvml: Any = None,
    env: Mapping[str, str] | None = None,
) -> tuple[GPU | None, dict[str, Any]]:
    """The GPU `device` computes on, opened for metering (None on the CPU), and the notes that say how
    it was found. `nvml` and `env` stand in for NVML and the environment (tests); `require_gpu` raises
    where none can be metered."""
    if device is None or not device.is_cuda:
        return None, {}
    env = os.environ if env is None else env
    gpu: GPU | None = None
    try:
        gpu, how = open_visible_gpu(nvml, 0, device.uuid(), env)
    except MeteringError as e:
        how = str(e)
        if require_gpu:
            raise MeteringError(
                f"no NVIDIA GPU can be metered: {e}; run with --gpus 0 to measure on the CPU"
            ) from e
    if gpu is None and require_gpu:
        raise MeteringError(f"no NVIDIA GPU visible ({how}); run with --gpus 0 to measure on the CPU")
    return gpu, {"gpu_found_by": how, "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES")}


def open_meter(
    device: MeteredDevice | None, settings: MeterSettings | None = None, *, require_gpu: bool = False
) -> Meter:
    """A meter for `device`'s GPU and this machine's CPU — the CPU alone where `device` is None or not
    CUDA (a `--gpus 0` run), or where no GPU is visible (`require_gpu=True` raises instead).

    The GPU is found by the UUID the device reports (see `gpu.find_visible_gpu`), so a Ray actor whose
    one GPU is "CUDA 0" reports its real NVML index; where it reports none the CUDA driver is asked
    through ctypes. The meter synchronises through `device.sync`. CPU: RAPL if readable, else the
    labelled estimate. The sampler is not started until the first window (or `start()`); call `close()`
    when done.
    """
    gpu, notes = visible_gpu(device, require_gpu=require_gpu)
    return Meter(
        gpu,
        open_cpu("auto"),
        settings,
        sync=device.sync if device is not None else None,
        notes=notes,
    )
